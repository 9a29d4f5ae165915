import numpy as np
import pytest
import torch

from vaebench.models.dip_vae import (DIPVAEI, DIPVAEII, DIPVAEIConfig, DIPVAEIIConfig, covariance,
                                     dip_penalties)


def test_covariance_and_penalties_by_hand():
    mu = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, 1.0]])
    # mean (2, 1); centred rows (-1, -1), (1, 1), (0, 0) -> Cov = [[2/3, 2/3], [2/3, 2/3]]
    cov = covariance(mu)
    assert torch.allclose(cov, torch.full((2, 2), 2 / 3))
    off, diag = dip_penalties(cov)
    assert off.item() == pytest.approx(2 * (2 / 3) ** 2)  # two off-diagonal entries
    assert diag.item() == pytest.approx(2 * (2 / 3 - 1) ** 2)


def test_dip_ii_covariance_adds_the_mean_encoder_variance():
    mu = torch.tensor([[1.0, 0.0], [3.0, 2.0], [2.0, 1.0]])
    var = torch.tensor([[1.0, 4.0], [1.0, 2.0], [1.0, 6.0]])  # E[var] = (1, 4)
    cov = covariance(mu) + torch.diag(var.mean(0))
    # [[2/3 + 1, 2/3], [2/3, 2/3 + 4]]
    off, diag = dip_penalties(cov)
    assert off.item() == pytest.approx(2 * (2 / 3) ** 2)
    assert diag.item() == pytest.approx((2 / 3) ** 2 + (2 / 3 + 3) ** 2)


@pytest.mark.parametrize("cls,cfg_cls,with_var",
                         [(DIPVAEI, DIPVAEIConfig, False), (DIPVAEII, DIPVAEIIConfig, True)])
def test_model_loss_matches_a_numpy_computation(cls, cfg_cls, with_var):
    torch.manual_seed(0)
    model = cls(cfg_cls(lambda_od=3.0, lambda_d_factor=5.0, latent_dim=4), (1, 28, 28), 0)
    x = torch.rand(8, 1, 28, 28).round()
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    t = model.forward_terms(x)
    mu = t["mu"].detach().double().numpy()
    cov = np.cov(mu.T, bias=True)
    if with_var:
        cov = cov + np.diag(np.exp(t["logvar"].detach().double().numpy()).mean(0))
    off = (cov - np.diag(np.diag(cov))) ** 2
    expected = (t["recon"].mean() + t["kl_dims"].sum(1).mean()).item() + 3.0 * off.sum() \
        + 15.0 * ((np.diag(cov) - 1) ** 2).sum()
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-5)


def test_paper_ratios_of_lambda_d_to_lambda_od():
    assert DIPVAEIConfig().lambda_d_factor == 10.0
    assert DIPVAEIIConfig().lambda_d_factor == 1.0

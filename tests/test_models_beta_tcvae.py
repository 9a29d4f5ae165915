import math

import pytest
import torch

from vaebench.models.base import gaussian_log_density
from vaebench.models.beta_tcvae import (BetaTCVAE, BetaTCVAEConfig, log_importance_weights, log_qz_estimates,
                                        total_correlation)


def gaussian_codes(rho: float, n: int, var: float = 0.1, seed: int = 0):
    """n 2-D posteriors N(mu_i, var I) whose means have correlation rho; the aggregate posterior is
    then ~ N(0, [[1, c], [c, 1]]) with c = (1 - var) rho, whose TC is -0.5 log(1 - c^2)."""
    g = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, generator=g), torch.randn(n, generator=g)
    mu = torch.stack([a, rho * a + math.sqrt(1 - rho**2) * b], 1) * math.sqrt(1 - var)
    logvar = torch.full_like(mu, math.log(var))
    z = mu + torch.randn(mu.shape, generator=g) * math.sqrt(var)
    return z, mu, logvar, -0.5 * math.log(1 - ((1 - var) * rho) ** 2)


@pytest.mark.parametrize("rho", [0.0, 0.9, 1.0])
def test_mss_tc_matches_the_gaussian_answer(rho):
    z, mu, logvar, true_tc = gaussian_codes(rho, 1000)  # the batch is the whole "dataset"
    assert total_correlation(z, mu, logvar, 1000, "mss").item() == pytest.approx(true_tc, abs=0.1)


@pytest.mark.parametrize("rho", [0.0, 0.9])
def test_mws_tc_is_the_same_estimate_plus_the_papers_log_nm_constant(rho):
    # MWS divides by N M instead of ~M: each log-density is log N lower, so the TC estimate
    # carries (D - 1) log N on top (a constant: no effect on gradients).
    z, mu, logvar, _ = gaussian_codes(rho, 1000)
    mws = total_correlation(z, mu, logvar, 1000, "mws").item()
    mss = total_correlation(z, mu, logvar, 1000, "mss").item()
    assert mws - mss == pytest.approx(math.log(1000), abs=0.01)


def test_identical_posteriors_have_zero_tc_under_mss_and_the_constant_under_mws():
    mu = torch.tensor([[0.3, -1.0, 2.0]]).repeat(16, 1)
    logvar = torch.tensor([[0.0, -1.0, 0.5]]).repeat(16, 1)
    z = mu + torch.randn(16, 3) * torch.exp(0.5 * logvar)
    n = 5000
    assert total_correlation(z, mu, logvar, n, "mss").item() == pytest.approx(0.0, abs=1e-5)
    assert total_correlation(z, mu, logvar, n, "mws").item() == pytest.approx(2 * math.log(n), abs=1e-4)


def test_separated_codes_perfectly_correlated_vs_independent():
    # Narrow posteriors at distinct points: q(z) is a mixture of N spikes, TC its discrete value.
    # On the diagonal (z1 = z2): TC = H(z1) + H(z2) - H(z) = log N. On a 4x4 grid: TC = 0.
    eps = torch.full((16, 2), math.log(1e-4))
    diag = torch.arange(16.0)[:, None].repeat(1, 2)
    grid = torch.cartesian_prod(torch.arange(4.0), torch.arange(4.0))
    assert total_correlation(diag, diag, eps, 16, "mss").item() == pytest.approx(math.log(16), abs=1e-4)
    # Only the stratification weights (1/N vs ~1/(N-1)) separate the grid estimate from 0.
    assert total_correlation(grid, grid, eps, 16, "mss").item() == pytest.approx(0.0, abs=0.15)


def test_mss_weights_give_each_sample_its_own_posterior_at_one_over_n():
    w = log_importance_weights(5, 100).exp()
    assert torch.allclose(torch.diagonal(w), torch.full((5,), 1 / 100))
    assert torch.allclose(w.sum(1), torch.ones(5))
    m = 4  # batch - 1
    assert sorted(w[0].tolist()) == pytest.approx(sorted([1 / 100, (100 - m) / (100 * m)] + [1 / m] * 3))


def test_loss_decomposes_the_kl_and_weights_its_parts():
    torch.manual_seed(0)
    model = BetaTCVAE(BetaTCVAEConfig(alpha=2.0, beta=6.0, gamma=0.5, latent_dim=3, dataset_size=100,
                                      estimator="mss"), (1, 28, 28), 0)
    x = torch.rand(8, 1, 28, 28).round()
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    t = model.forward_terms(x)
    z, mu, logvar = t["z"], t["mu"], t["logvar"]
    # MI + TC + DWKL telescopes to the one-sample KL estimate log q(z|x) - log p(z).
    mc_kl = (gaussian_log_density(z, mu, logvar) - gaussian_log_density(z, 0 * z, 0 * z)).sum(1).mean()
    assert (terms["mi"] + terms["tc"] + terms["dwkl"]).item() == pytest.approx(mc_kl.item(), rel=1e-5)
    expected = terms["recon"] + 2.0 * terms["mi"] + 6.0 * terms["tc"] + 0.5 * terms["dwkl"]
    assert terms["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    log_qz, log_prod = log_qz_estimates(z, mu, logvar, 100, "mss")
    assert terms["tc"].item() == pytest.approx((log_qz - log_prod).mean().item(), rel=1e-6)


def test_n_is_the_training_split_handed_over_and_tc_free_drops_the_mws_constant():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28).round()
    model = BetaTCVAE(BetaTCVAEConfig(latent_dim=4), (1, 28, 28), 0, train_size=60_000)
    assert model.dataset_size == 60_000
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    t = model.forward_terms(x)
    log_qz, log_prod = log_qz_estimates(t["z"], t["mu"], t["logvar"], 60_000, "mws")
    assert terms["tc"].item() == pytest.approx((log_qz - log_prod).mean().item(), rel=1e-6)
    assert terms["tc_free"].item() == pytest.approx(terms["tc"].item() - 3 * math.log(60_000), abs=1e-4)
    # the explicit config value wins; without either the model says what it needs
    assert BetaTCVAE(BetaTCVAEConfig(dataset_size=7), (1, 28, 28), 0, train_size=9).dataset_size == 7
    with pytest.raises(Exception, match="training split"):
        BetaTCVAE(BetaTCVAEConfig(latent_dim=4), (1, 28, 28), 0).loss(x)


def test_paper_defaults():
    cfg = BetaTCVAEConfig()
    assert (cfg.alpha, cfg.beta, cfg.gamma, cfg.estimator) == (1.0, 6.0, 1.0, "mws")

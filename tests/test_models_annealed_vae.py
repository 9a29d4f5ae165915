import pytest
import torch

from vaebench.models.annealed_vae import AnnealedVAE, AnnealedVAEConfig, capacity


def test_capacity_rises_linearly_then_stays_at_c_max():
    assert capacity(0, 25.0, 100_000) == 0.0
    assert capacity(20_000, 25.0, 100_000) == pytest.approx(5.0)
    assert capacity(50_000, 25.0, 100_000) == pytest.approx(12.5)
    assert capacity(100_000, 25.0, 100_000) == pytest.approx(25.0)
    assert capacity(300_000, 25.0, 100_000) == pytest.approx(25.0)


def test_paper_defaults():
    cfg = AnnealedVAEConfig()
    assert (cfg.gamma, cfg.c_max, cfg.iteration_threshold) == (1000.0, 25.0, 100_000)


@pytest.mark.parametrize("step", [0, 40, 200])
def test_loss_is_recon_plus_gamma_abs_kl_minus_capacity(step):
    torch.manual_seed(0)
    model = AnnealedVAE(AnnealedVAEConfig(gamma=7.0, c_max=2.0, iteration_threshold=100, latent_dim=3),
                        (1, 28, 28), 0)
    x = torch.rand(4, 1, 28, 28).round()
    torch.manual_seed(1)
    terms = model.loss(x, step=step)
    torch.manual_seed(1)
    t = model.forward_terms(x)
    kl = t["kl_dims"].sum(1).mean().item()
    c = min(2.0, 2.0 * step / 100)
    assert terms["capacity"].item() == pytest.approx(c)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(t["recon"].mean().item() + 7.0 * abs(kl - c), rel=1e-6)

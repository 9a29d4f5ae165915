"""The shared VAE pieces: hand-computed losses, shapes, conditioning."""

import math

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.models.architectures import ConvDecoder, ConvEncoder
from vaebench.models.base import bernoulli_nll, gaussian_kl
from vaebench.models.beta_vae import BetaVAE, BetaVAEConfig
from vaebench.models.cvae import CVAE, CVAEConfig
from vaebench.models.vae import VAE, VAEConfig


def test_gaussian_kl_matches_closed_form():
    mu, logvar = torch.tensor([[0.0, 1.0, -2.0]]), torch.tensor([[0.0, math.log(4.0), math.log(0.25)]])
    # KL(N(m, s2) || N(0, 1)) = 0.5 (m^2 + s2 - 1 - log s2)
    expected = [0.0, 0.5 * (1 + 4 - 1 - math.log(4)), 0.5 * (4 + 0.25 - 1 - math.log(0.25))]
    assert gaussian_kl(mu, logvar)[0].tolist() == pytest.approx(expected)


def test_bernoulli_nll_is_summed_per_image_in_nats():
    logits = torch.zeros(2, 1, 2, 2)  # p = 0.5 everywhere
    x = torch.ones(2, 1, 2, 2)
    assert bernoulli_nll(logits, x).tolist() == pytest.approx([4 * math.log(2)] * 2)


@pytest.mark.parametrize("shape", [(1, 64, 64), (1, 28, 28), (3, 28, 28)])
def test_architectures_round_trip_shapes(shape):
    enc, dec = ConvEncoder(shape, 20), ConvDecoder(shape, 10)
    x = torch.rand(5, *shape)
    assert enc(x).shape == (5, 20)
    assert dec(torch.randn(5, 10)).shape == (5, *shape)


def test_unsupported_image_size_is_a_clear_error():
    with pytest.raises(VaebenchError, match=r"\(1, 32, 32\).*supported"):
        ConvEncoder((1, 32, 32), 10)


def test_beta_vae_loss_is_recon_plus_beta_kl():
    torch.manual_seed(0)
    model = BetaVAE(BetaVAEConfig(beta=4.0, latent_dim=3), (1, 28, 28), 0)
    x = torch.rand(4, 1, 28, 28).round()
    torch.manual_seed(1)
    terms = model.loss(x)
    torch.manual_seed(1)
    t = model.forward_terms(x)
    assert terms["recon"].item() == pytest.approx(t["recon"].mean().item())
    assert terms["kl"].item() == pytest.approx(t["kl_dims"].sum(1).mean().item())
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 4.0 * terms["kl"].item(), rel=1e-6)


def test_vae_elbo_terms_are_per_image_and_consistent():
    torch.manual_seed(0)
    model = VAE(VAEConfig(latent_dim=3), (1, 28, 28), 0)
    t = model.elbo_terms(torch.rand(6, 1, 28, 28).round())
    assert t["elbo"].shape == (6,)
    assert torch.allclose(t["elbo"], -(t["recon"] + t["kl"]))
    assert (t["kl"] >= 0).all()


def test_cvae_uses_the_label():
    torch.manual_seed(0)
    model = CVAE(CVAEConfig(latent_dim=3), (1, 28, 28), num_classes=10)
    z = torch.randn(2, 3)
    a = model.decode(z, torch.tensor([0, 0]))
    b = model.decode(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="labels"):
        model.encode(torch.rand(2, 1, 28, 28))
    assert model.sample(4).shape == (4, 1, 28, 28)  # labels drawn when none are given

import pytest
import torch

from vaebench.models.base import bernoulli_nll, gaussian_log_density
from vaebench.models.iwae import IWAE, IWAEConfig


@pytest.fixture
def model_and_x():
    torch.manual_seed(0)
    model = IWAE(IWAEConfig(k=5, latent_dim=3), (1, 28, 28), 0)
    return model, torch.rand(6, 1, 28, 28).round()


def test_iwae_bound_is_at_least_the_elbo_of_the_same_samples(model_and_x):
    model, x = model_and_x
    with torch.no_grad():
        t = model.bound_terms(x, k=5)
    # log mean_j w_j >= mean_j log w_j (Jensen), per image, for the very same k samples.
    assert (t["iwae"] >= -(t["recon"] + t["kl"]) - 1e-4).all()
    assert (t["iwae"] > -(t["recon"] + t["kl"]) + 1e-3).any()


def test_k1_bound_is_the_single_sample_elbo(model_and_x):
    model, x = model_and_x
    with torch.no_grad():
        torch.manual_seed(3)
        t = model.bound_terms(x, k=1)
        torch.manual_seed(3)
        mu, logvar = model.encode(x)
        z = mu + torch.randn(1, *mu.shape)[0] * torch.exp(0.5 * logvar)
        elbo = (-bernoulli_nll(model.decode(z), x) + gaussian_log_density(z, 0 * z, 0 * z).sum(1)
                - gaussian_log_density(z, mu, logvar).sum(1))
    assert torch.allclose(t["iwae"], elbo, atol=1e-3)
    assert torch.allclose(t["iwae"], -(t["recon"] + t["kl"]), atol=1e-3)


def test_elbo_is_the_single_sample_elbo_and_the_iwae_bound_has_its_own_column(model_and_x):
    model, x = model_and_x
    torch.manual_seed(5)
    terms = model.elbo_terms(x)
    torch.manual_seed(5)
    t = model.forward_terms(x)  # the single-sample pass every Gaussian VAE reports
    single = -(t["recon"] + t["kl_dims"].sum(1))
    assert torch.allclose(terms["elbo"], single)
    assert torch.allclose(terms["elbo"], -(terms["recon"] + terms["kl"]))
    torch.manual_seed(5)
    model.forward_terms(x)
    b = model.bound_terms(x)
    assert torch.allclose(terms["iwae_bound"], b["iwae"])
    # on the same k draws the k-sample bound is never below their average ELBO (Jensen)
    assert (b["iwae"] >= -(b["recon"] + b["kl"]) - 1e-4).all()
    torch.manual_seed(5)
    t = model.bound_terms(x)
    torch.manual_seed(5)
    assert model.loss(x)["loss"].item() == pytest.approx(-t["iwae"].mean().item(), rel=1e-6)

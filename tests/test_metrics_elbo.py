"""The elbo, recon_error and nll metrics on tiny models and an in-memory dataset."""

import math
from pathlib import Path

import pytest
import torch

from vaebench.data.base import TensorImageDataset
from vaebench.metrics.base import EvalContext
from vaebench.metrics.elbo import elbo, label_log_prior, recon_error
from vaebench.metrics.nll import nll
from vaebench.models.base import bernoulli_nll
from vaebench.models.cvae import CVAE, CVAEConfig
from vaebench.models.vae import VAE, VAEConfig


def tiny_dataset(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(n, 1, 28, 28, generator=g) > 0.5).to(torch.uint8) * 255
    y = torch.tensor([0, 0, 1] * (n // 3))  # label frequencies 2/3, 1/3
    return TensorImageDataset("tiny", x, y, x[:12], y[:12], num_classes=3)


def ctx(model, data, seed=0):
    return EvalContext(model=model.eval(), dataset=data, device=torch.device("cpu"), seed=seed,
                       data_root=Path("."))


def test_cvae_elbo_marginalises_the_label_with_its_train_frequencies():
    torch.manual_seed(0)
    data = tiny_dataset()
    model = CVAE(CVAEConfig(latent_dim=3), data.image_shape, data.num_classes)
    assert torch.allclose(label_log_prior(data).exp(), torch.tensor([2 / 3, 1 / 3, 0.0], dtype=torch.float64))
    out = elbo(ctx(model, data))
    assert set(out.scores) >= {"elbo", "elbo_given_label", "elbo_recon", "elbo_kl"}
    # by hand, with the same posterior noise: log sum_y p(y) exp(ELBO(x | y))
    x, y = data.batch("test", torch.arange(12))
    torch.manual_seed(0)
    with torch.no_grad():
        given = model.elbo_terms(x, y)["elbo"].double()
        per_label = [model.elbo_terms(x, torch.full((12,), c))["elbo"].double() for c in (0, 1)]
    marginal = torch.logsumexp(torch.stack([per_label[0] + math.log(2 / 3), per_label[1] + math.log(1 / 3)]), 0)
    assert out.scores["elbo_given_label"] == pytest.approx(given.mean().item(), rel=1e-6)
    assert out.scores["elbo"] == pytest.approx(marginal.mean().item(), rel=1e-6)
    assert out.details["bound_on"] == "log p(x)"


def test_recon_error_uses_the_logits_without_a_cap():
    """A confidently wrong pixel costs its full logit, not the 13.8 nats of a clamped sigmoid."""
    data = tiny_dataset()
    model = VAE(VAEConfig(latent_dim=2), data.image_shape, data.num_classes)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.zero_()
        convs = [m for m in model.decoder.modules() if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Conv2d))]
        convs[-1].bias.fill_(-40.0)  # every pixel "certainly 0": each 1-pixel costs 40 nats
    out = recon_error(ctx(model, data))
    x, _ = data.batch("test", torch.arange(12))
    ones_per_image = x.flatten(1).sum(1).double().mean().item()
    assert out.scores["recon_error"] == pytest.approx(40 * ones_per_image, rel=1e-3)
    assert out.scores["recon_error"] > 13.9 * ones_per_image
    assert bernoulli_nll(torch.full((1, 1), -40.0), torch.ones(1, 1)).item() == pytest.approx(40, rel=1e-6)


def test_metrics_sample_with_the_evaluation_seed_not_the_training_seed():
    torch.manual_seed(0)
    data = tiny_dataset()
    model = VAE(VAEConfig(latent_dim=2), data.image_shape, data.num_classes)
    a, b = elbo(ctx(model, data, seed=0)), elbo(ctx(model, data, seed=0))
    assert a.scores == b.scores  # the same evaluation seed: the same posterior draws
    assert elbo(ctx(model, data, seed=1)).scores["elbo"] != a.scores["elbo"]


def test_nll_is_below_the_elbo_and_not_applicable_without_a_gaussian_posterior():
    torch.manual_seed(0)
    data = tiny_dataset()
    model = VAE(VAEConfig(latent_dim=2), data.image_shape, data.num_classes)
    lower = nll(ctx(model, data), num_samples=200)
    assert lower.scores["nll"] < -elbo(ctx(model, data)).scores["elbo"]
    assert lower.scores["nll_se"] > 0 and lower.details["num_samples"] == 200

    class NoPosterior(torch.nn.Module):
        pass

    from vaebench.errors import NotApplicable

    with pytest.raises(NotApplicable):
        nll(ctx(NoPosterior(), data))

"""Decoder likelihoods against hand computation and scipy.stats; bits per dimension; the bound flag."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import vaebench.data  # noqa: F401  (registers datasets)
import vaebench.metrics  # noqa: F401  (registers metrics)
import vaebench.models  # noqa: F401  (registers models)
from vaebench.data.base import TensorImageDataset
from vaebench.metrics.base import EvalContext
from vaebench.models.likelihoods import (bits_per_dim, discrete_nll_from_density, make_likelihood)
from vaebench.registry import DATASETS, METRICS, MODELS


def grey(k):
    """8-bit levels k -> the dataset's values k / 255, shape (1, 1, 1, len(k))."""
    return torch.as_tensor(k, dtype=torch.float64).div(255.0).view(1, 1, 1, -1)


def test_bernoulli_is_the_cross_entropy():
    lik = make_likelihood("bernoulli")
    out = torch.tensor([0.0, 2.0, -1.0]).view(1, 1, 1, 3)
    x = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    expected = math.log(2) + math.log(1 + math.e ** 2) + math.log(1 + math.e)
    assert lik.nll(out, x).item() == pytest.approx(expected, rel=1e-6)
    assert lik.is_bound(x) and not lik.is_bound(grey([0, 128, 255]))


def test_gaussian_is_scipys_density_on_dequantised_pixels_plus_the_jacobian():
    lik = make_likelihood("gaussian", 0.05).double()
    x, out = grey([0, 17, 128, 255]), torch.tensor([-1.0, 0.3, 0.0, 2.5], dtype=torch.float64).view(1, 1, 1, 4)
    torch.manual_seed(0)
    nll = lik.nll(out, x).item()
    torch.manual_seed(0)
    y = (torch.tensor([0.0, 17, 128, 255], dtype=torch.float64) + torch.rand_like(x).flatten()) / 256  # same u
    mean = torch.sigmoid(out).flatten().numpy()
    sigma = lik.log_scale.exp().item()  # 0.05, as stored (a float32 log-scale)
    assert sigma == pytest.approx(0.05, rel=1e-6)
    expected = -stats.norm.logpdf(y.numpy(), mean, sigma).sum() + 4 * math.log(256)
    assert nll == pytest.approx(expected, rel=1e-9)


def test_dequantised_gaussian_bounds_the_exact_8bit_probability():
    # Jensen: E_u[-log p((k + u) / 256)] + log 256 >= -log P(k) with P(k) the mass of the bin
    # [k/256, (k+1)/256); the gap is tiny when the density is flat over a bin. A wrong sign on the
    # Jacobian would be off by 2 log 256 = 11.1 nats per pixel.
    sigma, k = 0.2, np.array([3, 100, 200])
    lik = make_likelihood("gaussian", sigma).double()
    out = torch.zeros(4000, 1, 1, 3, dtype=torch.float64)  # mean 0.5, 4000 draws of u
    x = grey(k).expand(4000, 1, 1, 3)
    torch.manual_seed(1)
    mc = lik.nll(out, x).mean().item()
    exact = -np.log(stats.norm.cdf((k + 1) / 256, 0.5, sigma) - stats.norm.cdf(k / 256, 0.5, sigma)).sum()
    assert exact <= mc + 1e-3 and mc - exact < 1e-3
    assert discrete_nll_from_density(torch.tensor(0.0), 3072).item() == pytest.approx(3072 * math.log(256))
    assert bits_per_dim(discrete_nll_from_density(torch.tensor(0.0), 3072), 3072).item() == pytest.approx(8.0)


def test_discretised_logistic_is_scipys_bin_mass_and_sums_to_one():
    s, mean_logit = 0.03, 0.4
    lik = make_likelihood("logistic", s).double()
    levels = np.arange(256)
    nll = lik.nll(torch.full((1, 1, 1, 256), mean_logit, dtype=torch.float64), grey(levels)).item()
    m, s = 1 / (1 + math.exp(-mean_logit)), lik.log_scale.exp().item()
    cdf = lambda v: stats.logistic.cdf(v, m, s)  # noqa: E731
    mass = cdf((levels + 0.5) / 255) - cdf((levels - 0.5) / 255)
    mass[0], mass[-1] = cdf(0.5 / 255), 1 - cdf(254.5 / 255)
    assert nll == pytest.approx(-np.log(mass).sum(), rel=1e-9)
    per_level = [lik.nll(torch.full((1, 1, 1, 1), mean_logit, dtype=torch.float64), grey([k])).item()
                 for k in levels]
    assert np.exp(-np.array(per_level)).sum() == pytest.approx(1.0, abs=1e-6)


def test_unknown_likelihood_is_a_config_error():
    with pytest.raises(Exception, match="bernoulli"):
        MODELS.get("vae").Config(likelihood="poisson")


def grey_dataset():
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (32, 3, 64, 64), generator=g, dtype=torch.uint8)
    test = torch.randint(0, 256, (16, 3, 64, 64), generator=g, dtype=torch.uint8)
    return TensorImageDataset("rgb", train, torch.zeros(32), test, torch.zeros(16), num_classes=1)


@pytest.mark.parametrize("likelihood,data,bound", [("gaussian", "rgb", True), ("logistic", "rgb", True),
                                                  ("bernoulli", "rgb", False), ("bernoulli", "dsprites", True)])
def test_elbo_reports_bits_per_dim_and_whether_it_is_a_bound(likelihood, data, bound, tmp_path):
    ds = grey_dataset() if data == "rgb" else DATASETS.get("dsprites_procedural")(tmp_path, test_size=16, train_size=32)
    torch.manual_seed(0)
    cls = MODELS.get("vae")
    model = cls(cls.Config(likelihood=likelihood), ds.image_shape, ds.num_classes)
    opts = model.make_optimizers(1e-3)
    before = [p.detach().clone() for p in model.likelihood.parameters()]
    for step in range(2):
        x, y = ds.batch("train", torch.arange(8 * step, 8 * step + 8))
        assert torch.isfinite(model.training_step(x, y, step, opts)["loss"])
    # the learned scale is trained with the rest
    assert all(not torch.equal(b, p) for b, p in zip(before, model.likelihood.parameters()))
    model.eval()
    ctx = EvalContext(model=model, dataset=ds, device=torch.device("cpu"), seed=0, data_root=tmp_path)
    result = METRICS.get("elbo")(ctx)
    d = math.prod(ds.image_shape)
    assert result.scores["elbo_bpd"] == pytest.approx(-result.scores["elbo"] / (d * math.log(2)))
    assert result.details["bound"] is bound and result.details["likelihood"] == likelihood
    if bound:  # a bound on an 8-bit / binary image's probability: at least 0 bits
        assert result.scores["elbo_bpd"] > 0


def test_iwae_uses_the_likelihood_and_hvae_refuses_one_it_lacks():
    from vaebench.errors import VaebenchError

    ds = grey_dataset()
    torch.manual_seed(0)
    cls = MODELS.get("iwae")
    model = cls(cls.Config(likelihood="logistic", k=4), ds.image_shape, ds.num_classes).eval()
    x, _ = ds.batch("test", torch.arange(4))
    with torch.no_grad():
        t = model.bound_terms(x)
        recon = model.likelihood.nll(model.decode(model.encode(x)[0]), x)
    # the k-sample bound is at least the average single-sample ELBO
    assert torch.isfinite(t["iwae"]).all() and (t["iwae"] >= -(t["recon"] + t["kl"]) - 1e-3).all()
    assert torch.isfinite(recon).all() and (recon > 0).all()
    hvae = MODELS.get("hvae")
    with pytest.raises(VaebenchError, match="Bernoulli decoder only"):
        hvae(hvae.Config(likelihood="gaussian"), ds.image_shape, ds.num_classes)

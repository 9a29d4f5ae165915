"""Importance-sampled NLL on a model whose log-likelihood is exact: a linear-Gaussian VAE,
p(z) = N(0, I), p(x | z) = N(W z + b, s^2 I), so p(x) = N(b, W W^T + s^2 I)."""

import math

import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from vaebench.metrics.nll import importance_sampled_log_px, log_mean_exp
from vaebench.models.base import gaussian_kl


class LinearGaussianVAE(nn.Module):
    conditional = False

    def __init__(self, x_dim=4, z_dim=2, s=0.5, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(x_dim, z_dim, generator=g, dtype=torch.float64)
        self.b = torch.randn(x_dim, generator=g, dtype=torch.float64)
        self.s = s
        # The exact posterior is N(A (x - b), S) with a full covariance S; the encoder keeps the
        # exact mean but a diagonal, inflated variance: a proper but imperfect q(z | x).
        prec = torch.eye(z_dim, dtype=torch.float64) + self.w.T @ self.w / s**2
        self.cov = torch.linalg.inv(prec)
        self.a = self.cov @ self.w.T / s**2

    def encode(self, x, y=None):
        mu = (x - self.b) @ self.a.T
        return mu, torch.log(1.5 * torch.diagonal(self.cov)).expand_as(mu)

    def decoder_nll(self, x, z, y=None):
        mean = z @ self.w.T + self.b
        d = x.shape[1]
        return 0.5 * (((x - mean) / self.s) ** 2).sum(1) + d * math.log(self.s) + 0.5 * d * math.log(2 * math.pi)

    def exact_log_px(self, x):
        cov = (self.w @ self.w.T + self.s**2 * torch.eye(len(self.b), dtype=torch.float64)).numpy()
        return torch.from_numpy(multivariate_normal(self.b.numpy(), cov).logpdf(x.numpy()))

    def elbo(self, x):
        """Exact ELBO: E_q log p(x|z) - KL(q || p), with E_q of the quadratic in closed form."""
        mu, logvar = self.encode(x)
        var = logvar.exp()
        mean = mu @ self.w.T + self.b
        d = x.shape[1]
        expected_sq = ((x - mean) ** 2).sum(1) + (var @ (self.w ** 2).T).sum(1)
        ell = -0.5 * expected_sq / self.s**2 - d * math.log(self.s) - 0.5 * d * math.log(2 * math.pi)
        return ell - gaussian_kl(mu, logvar).sum(1)


def test_importance_sampled_log_px_lies_between_the_elbo_and_the_exact_log_likelihood():
    torch.manual_seed(0)
    model = LinearGaussianVAE()
    z = torch.randn(200, 2, dtype=torch.float64)
    x = z @ model.w.T + model.b + model.s * torch.randn(200, 4, dtype=torch.float64)
    exact, elbo = model.exact_log_px(x), model.elbo(x)
    est, se = importance_sampled_log_px(model, x, num_samples=1000)  # in chunks of 20 samples
    assert (elbo < exact).all()  # the encoder is imperfect: a real gap to close
    gap = (exact - elbo).mean().item()
    assert gap > 0.05
    # a lower bound in expectation: above the exact value by no more than its noise allows
    se_of_mean = se.pow(2).sum().sqrt().item() / len(x)
    assert elbo.mean() < est.mean() <= exact.mean() + 3 * se_of_mean
    # K = 1000 closes almost all of the gap; the per-image error is what its standard error says
    assert (exact - est).mean().item() < 0.05 * gap
    assert ((est - exact).abs() < 5 * se + 1e-3).float().mean() > 0.95
    # K = 1 is the ELBO's Monte Carlo estimate (averaged here over 50 draws per image)
    est1, _ = importance_sampled_log_px(model, x.repeat(50, 1), num_samples=1)
    assert est1.mean().item() == pytest.approx(elbo.mean().item(), abs=0.2 * gap)
    assert est1.mean() < est.mean()


def test_log_mean_exp_and_its_standard_error_by_hand():
    log_w = torch.log(torch.tensor([[1.0], [2.0], [3.0], [6.0]], dtype=torch.float64))
    est, se = log_mean_exp(log_w)
    assert est.item() == pytest.approx(math.log(3.0))
    w = torch.tensor([1.0, 2.0, 3.0, 6.0])
    assert se.item() == pytest.approx(math.sqrt(w.var().item() / (4 * 3.0**2)), rel=1e-6)

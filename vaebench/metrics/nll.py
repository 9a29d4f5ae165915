"""Importance-sampled negative log-likelihood (Burda et al. 2016, Appendix: "we estimate the
log-likelihood with k = 5000 importance samples"), the number generative-model papers compare.

    log p(x) ~ log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x),   z_k ~ q(z | x)

For any K this is a stochastic lower bound on log p(x) in expectation (Jensen), tighter than the
ELBO (K = 1) and consistent as K grows. For a conditional model the label is marginalised with its
training frequencies p(y): K samples are split evenly over the labels and
log p(x) ~ log sum_y p(y) p_hat(x | y).
"""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt

from vaebench.errors import NotApplicable
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.elbo import label_log_prior
from vaebench.models.base import gaussian_log_density
from vaebench.models.likelihoods import bits_per_dim
from vaebench.registry import register_metric


def log_importance_weights(model, x, y, num_samples: int, chunk_images: int = 4096) -> torch.Tensor:
    """(num_samples, B) log p(x, z_k) - log q(z_k | x) for z_k ~ q(z | x, y), batched over samples
    so that at most `chunk_images` decoder inputs are in flight."""
    mu, logvar = model.encode(x, y)
    b = len(x)
    per_chunk = max(1, chunk_images // b)
    out = []
    for start in range(0, num_samples, per_chunk):
        k = min(per_chunk, num_samples - start)
        z = mu + torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype) * torch.exp(0.5 * logvar)
        flat = z.reshape(k * b, -1)
        x_k = x.expand(k, *x.shape).reshape(k * b, *x.shape[1:])
        y_k = None if y is None else y.repeat(k)
        log_px_z = -model.decoder_nll(x_k, flat, y_k).view(k, b)
        log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(-1)
        log_qz = gaussian_log_density(z, mu, logvar).sum(-1)
        out.append(log_px_z + log_pz - log_qz)
    return torch.cat(out).double()


def log_mean_exp(log_w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log (1/K) sum_k exp(log_w) over dim 0, and its Monte Carlo standard error by the delta
    method, sqrt(Var(w) / (K mean(w)^2)), computed on weights scaled by their maximum."""
    k = log_w.shape[0]
    est = torch.logsumexp(log_w, dim=0) - math.log(k)
    w = torch.exp(log_w - log_w.max(0).values)
    se = (w.var(0, unbiased=True) / (k * w.mean(0).pow(2))).sqrt() if k > 1 else torch.zeros_like(est)
    return est, se


def importance_sampled_log_px(model, x, y=None, num_samples: int = 1000, log_prior=None):
    """Per-image estimate of log p(x) (B,) and its Monte Carlo standard error (B,). With
    `log_prior` (a conditional model's log p(y)), y is ignored and marginalised."""
    if log_prior is None:
        return log_mean_exp(log_importance_weights(model, x, y, num_samples))
    labels = torch.nonzero(torch.isfinite(log_prior)).flatten().tolist()
    per_label = max(1, num_samples // len(labels))
    terms, variances = [], []
    for c in labels:
        yc = torch.full((len(x),), c, dtype=torch.long, device=x.device)
        est, se = log_mean_exp(log_importance_weights(model, x, yc, per_label))
        terms.append(log_prior[c].item() + est)
        variances.append(se)
    stacked = torch.stack(terms)
    total = torch.logsumexp(stacked, dim=0)
    # delta method again: d log sum_c a_c = sum_c (a_c / sum a) d log a_c
    share = torch.exp(stacked - total)
    return total, (share.pow(2) * torch.stack(variances).pow(2)).sum(0).sqrt()


@register_metric("nll", description="importance-sampled negative log-likelihood per image (nats; "
                 "lower is better), K posterior samples, with its standard error",
                 paper="Burda et al. 2016, Importance Weighted Autoencoders",
                 scores={"nll": "lower", "nll_se": "lower", "nll_bpd": "lower"},
                 quick_params={"num_samples": 50, "num_examples": 64})
@torch.no_grad()
def nll(ctx: EvalContext, num_samples: PositiveInt = 1000, num_examples: PositiveInt | None = None) -> MetricResult:
    """-log p(x) averaged over the test split (or its first `num_examples`), K = `num_samples`
    importance samples from the posterior per image (papers use 5,000). `nll_se`: the standard
    error of that mean over test images; details give the mean Monte Carlo error per image."""
    model = ctx.model
    if not (hasattr(model, "encode") and hasattr(model, "decoder_nll")):
        raise NotApplicable(f"nll needs a Gaussian posterior q(z|x) and a decoder likelihood; "
                            f"{type(model).__name__} has neither (its bound is reported by elbo)")
    torch.manual_seed(ctx.seed)
    log_prior = label_log_prior(ctx.dataset) if getattr(model, "conditional", False) else None
    values, mc = [], []
    for x, y in ctx.dataset.iter_batches("test", min(ctx.batch_size, 64), ctx.device, limit=num_examples):
        est, se = importance_sampled_log_px(model, x, y, num_samples, log_prior)
        values.append(-est)
        mc.append(se)
    values, mc = torch.cat(values), torch.cat(mc)
    n = len(values)
    se = (values.std(unbiased=True) / math.sqrt(n)).item() if n > 1 else float("nan")
    dims = math.prod(ctx.dataset.image_shape)
    return MetricResult({"nll": values.mean().item(), "nll_se": se,
                         "nll_bpd": bits_per_dim(values.mean().item(), dims)},
                        {"num_examples": n, "num_samples": num_samples,
                         "unit": "nats per image; nll_bpd: bits per dimension",
                         "mean_monte_carlo_se_per_image": mc.mean().item(),
                         "label": "marginalised with train label frequencies" if log_prior is not None else None})

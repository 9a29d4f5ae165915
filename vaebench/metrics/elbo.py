"""Test-set ELBO and reconstruction error, per image in nats."""

from __future__ import annotations

from pydantic import PositiveInt
import torch

from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.models.base import bernoulli_nll
from vaebench.registry import register_metric


@register_metric("elbo", description="test ELBO per image (nats; higher is better), with its "
                 "reconstruction and KL terms", paper="Kingma & Welling 2014")
@torch.no_grad()
def elbo(ctx: EvalContext, num_examples: PositiveInt | None = None) -> MetricResult:
    """Mean over the test split (or its first `num_examples`) of the model's bound; one
    posterior sample per image, drawn from a generator seeded by the run's seed."""
    torch.manual_seed(ctx.seed)
    sums, n = {}, 0
    for x, y in ctx.dataset.iter_batches("test", ctx.batch_size, ctx.device, limit=num_examples):
        terms = ctx.model.elbo_terms(x, y)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v.double().sum().item()
        n += len(x)
    means = {k: v / n for k, v in sums.items()}
    scores = {"elbo": means.pop("elbo")}
    scores.update({f"elbo_{k}": v for k, v in means.items()})
    return MetricResult(scores, {"num_examples": n, "unit": "nats per image"})


@register_metric("recon_error", description="test reconstruction error per image: Bernoulli "
                 "NLL of the decoded posterior mean (nats; lower is better), and pixel MSE")
@torch.no_grad()
def recon_error(ctx: EvalContext, num_examples: PositiveInt | None = None) -> MetricResult:
    nll, sq, n = 0.0, 0.0, 0
    for x, y in ctx.dataset.iter_batches("test", ctx.batch_size, ctx.device, limit=num_examples):
        x_hat = ctx.model.reconstruct(x, y).clamp(1e-6, 1 - 1e-6)
        nll += bernoulli_nll(torch.logit(x_hat), x).double().sum().item()
        sq += (x_hat - x).pow(2).flatten(1).sum(1).double().sum().item()
        n += len(x)
    return MetricResult({"recon_error": nll / n, "recon_mse": sq / n},
                        {"num_examples": n, "unit": "nats per image; MSE summed over pixels"})

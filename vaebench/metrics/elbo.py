"""Test-set ELBO and reconstruction error, per image in nats (the ELBO also in bits per dimension).

`elbo` is one quantity for every model: the single-sample ELBO of log p(x). A conditional model's
bound is on log p(x | y); it is turned into a bound on log p(x) by marginalising the label,
log sum_y p(y) exp(ELBO_y) <= log sum_y p(y) p(x | y) = log p(x), with p(y) the training split's
label frequencies. Model-specific bounds keep their own columns (`iwae_bound`,
`elbo_given_label`). A Bernoulli decoder on grey or colour pixels bounds nothing: the details
say `bound: false`.
"""

from __future__ import annotations

import math

import torch
from pydantic import PositiveInt

from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.models.likelihoods import Bernoulli, bits_per_dim
from vaebench.registry import register_metric

# elbo_terms keys that name their own quantity (kept as they are); other terms get "elbo_".
_OWN_COLUMN_SUFFIX = "_bound"


def label_log_prior(dataset) -> torch.Tensor:
    """(num_classes,) log of the training split's label frequencies (-inf for absent labels)."""
    counts = torch.bincount(dataset.labels("train"), minlength=dataset.num_classes).double()
    return (counts / counts.sum()).log()


def marginal_elbo(model, x, log_prior: torch.Tensor) -> torch.Tensor:
    """log sum_y p(y) exp(ELBO(x | y)) over every label with p(y) > 0, per image (B,)."""
    per_label = []
    for c in torch.nonzero(torch.isfinite(log_prior)).flatten().tolist():
        y = torch.full((len(x),), c, dtype=torch.long, device=x.device)
        per_label.append(log_prior[c].item() + model.elbo_terms(x, y)["elbo"].double())
    return torch.logsumexp(torch.stack(per_label), dim=0)


@register_metric("elbo", description="test ELBO of log p(x) per image (nats; higher is better), "
                 "one posterior sample, with its reconstruction and KL terms",
                 paper="Kingma & Welling 2014",
                 scores={"elbo": "higher", "elbo_given_label": "higher", "*_bound": "higher",
                         "elbo_bpd": "lower", "elbo_*": "lower"},
                 quick_params={"num_examples": 256})
@torch.no_grad()
def elbo(ctx: EvalContext, num_examples: PositiveInt | None = None) -> MetricResult:
    """Mean over the test split (or its first `num_examples`) of the single-sample ELBO; the
    posterior samples come from the global generator seeded with the evaluation seed."""
    torch.manual_seed(ctx.seed)
    conditional = getattr(ctx.model, "conditional", False)
    log_prior = label_log_prior(ctx.dataset) if conditional else None
    likelihood = getattr(ctx.model, "likelihood", None) or Bernoulli()
    sums, n, bound = {}, 0, True
    for x, y in ctx.dataset.iter_batches("test", ctx.batch_size, ctx.device, limit=num_examples):
        terms = ctx.model.elbo_terms(x, y)
        if conditional:  # the model's own bound is on log p(x | y): marginalise the label
            terms["elbo_given_label"] = terms.pop("elbo")
            terms["elbo"] = marginal_elbo(ctx.model, x, log_prior)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + v.double().sum().item()
        n += len(x)
        bound = bound and likelihood.is_bound(x)
    means = {k: v / n for k, v in sums.items()}
    scores = {"elbo": means.pop("elbo")}
    scores["elbo_bpd"] = bits_per_dim(-scores["elbo"], math.prod(ctx.dataset.image_shape))
    for k, v in means.items():
        own = k.endswith(_OWN_COLUMN_SUFFIX) or k.startswith("elbo_")
        scores[k if own else f"elbo_{k}"] = v
    # bound: False for a Bernoulli decoder on grey/colour pixels, whose "ELBO" bounds nothing
    details = {"num_examples": n, "unit": "nats per image; elbo_bpd: bits per dimension",
               "posterior_samples": 1, "bound_on": "log p(x)", "likelihood": likelihood.name,
               "bound": bound}
    if conditional:
        details["label_prior"] = "train split label frequencies"
        details["terms"] = "elbo_recon and elbo_kl are the terms of elbo_given_label (true label)"
    return MetricResult(scores, details)


@register_metric("recon_error", description="test reconstruction error per image: negative "
                 "log-likelihood of the image under the decoded posterior mean (nats; lower is "
                 "better), and pixel MSE",
                 scores={"recon_error": "lower", "recon_mse": "lower"},
                 quick_params={"num_examples": 256})
@torch.no_grad()
def recon_error(ctx: EvalContext, num_examples: PositiveInt | None = None) -> MetricResult:
    """-log p(x | z = posterior mean) straight from the decoder's logits (no clamping), and the
    squared error of the decoded mean summed over pixels."""
    nll, sq, n = 0.0, 0.0, 0
    for x, y in ctx.dataset.iter_batches("test", ctx.batch_size, ctx.device, limit=num_examples):
        nll += ctx.model.reconstruction_nll(x, y).double().sum().item()
        sq += (ctx.model.reconstruct(x, y) - x).pow(2).flatten(1).sum(1).double().sum().item()
        n += len(x)
    return MetricResult({"recon_error": nll / n, "recon_mse": sq / n},
                        {"num_examples": n, "unit": "nats per image; MSE summed over pixels"})


"""The registered metrics `fid` (prior samples) and `fid_recon` (reconstructions of the test set).

Both compare num_samples generated images with as many real test images (reference.py) under one
extractor, named in the score column: fid_domain / fid_recon_domain (vaebench's dataset
classifier, offline, the default) or fid_inception / fid_recon_inception (pytorch-fid's
Inception, the number papers report). Lower is better.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import PositiveInt
import torch

from vaebench.errors import VaebenchError
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.fid.domain import domain_extractor
from vaebench.metrics.fid.frechet import FeatureExtractor, feature_statistics, frechet_distance
from vaebench.metrics.fid.inception import InceptionExtractor, resolve_weights
from vaebench.metrics.fid.reference import real_batches, real_indices, reference_statistics
from vaebench.registry import register_metric

EXTRACTORS = ("domain", "inception")
PAPER = ("Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule Converge to a Local "
         "Nash Equilibrium")


def make_extractor(extractor: str, dataset, cache_dir: Path | None, data_root: Path | None,
                   weights: str | Path | None = None) -> FeatureExtractor:
    """"domain": the dataset's cached classifier; "inception": pytorch-fid's, weights as in
    inception.resolve_weights."""
    if extractor == "domain":
        return domain_extractor(dataset, cache_dir, data_root)
    if extractor == "inception":
        return InceptionExtractor(resolve_weights(weights))
    raise VaebenchError(f"FID extractor {extractor!r} is not one of {', '.join(EXTRACTORS)}")


def label_sampler(dataset, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) labels drawn from the train split's empirical label frequencies."""
    counts = torch.bincount(dataset.labels("train"), minlength=dataset.num_classes).double()
    return torch.multinomial(counts, n, replacement=True, generator=generator)


def prior_samples(model, dataset, n: int, batch_size: int, seed: int, device):
    """n samples (B, C, H, W) in [0, 1], in batches, from one generator seeded by `seed`; a
    conditional model gets labels from the data's label distribution."""
    gen = torch.Generator().manual_seed(seed)
    labels = label_sampler(dataset, n, gen) if getattr(model, "conditional", False) else None
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        y = None if labels is None else labels[start:start + b].to(device)
        yield model.sample(b, y=y, generator=gen)


def _setup(ctx: EvalContext, metric: str, extractor: str, num_samples: int, batch_size: int,
           weights) -> tuple[FeatureExtractor, int, dict]:
    if extractor not in EXTRACTORS:
        raise VaebenchError(f"{metric}: extractor {extractor!r} is not one of "
                            f"{', '.join(EXTRACTORS)} (domain: vaebench's offline classifier; "
                            f"inception: pytorch-fid's, needs its weights)")
    if num_samples < 2 or batch_size < 1:
        raise VaebenchError(f"{metric}: num_samples must be >= 2 and batch_size >= 1; got "
                            f"num_samples={num_samples}, batch_size={batch_size}")
    weights = ctx.fid_weights or weights  # the command line overrides the suite
    cache_key = ("fid.extractor", extractor, str(weights))
    if cache_key not in ctx.cache:  # fid and fid_recon of one run share it
        made = make_extractor(extractor, ctx.dataset, ctx.cache_dir, ctx.data_root, weights)
        ctx.cache[cache_key] = made.to(ctx.device).eval()
    ex = ctx.cache[cache_key]
    n_test = ctx.dataset.num_examples("test")
    n = min(num_samples, n_test)
    details = {"extractor": ex.info, "num_generated": n, "num_real": n,
               "num_samples_requested": num_samples}
    if n < num_samples:
        details["capped"] = f"num_samples {num_samples} capped at the test split's {n_test} images"
    return ex, n, details


@register_metric("fid", description="FID of prior samples vs the test set: fid_domain (vaebench's "
                 "dataset classifier, offline; not Inception FID) or fid_inception (pytorch-fid); "
                 "lower is better", paper=PAPER, scores={"fid_*": "lower"},
                 quick_params={"num_samples": 500})
@torch.no_grad()
def fid(ctx: EvalContext, extractor: str = "domain", num_samples: PositiveInt = 10_000,
        batch_size: PositiveInt = 100, weights: str | None = None) -> MetricResult:
    """num_samples generated and real images (capped at the test split's size); weights: the
    Inception weights file where `--fid-weights` is not given (else the torch hub cache)."""
    ex, n, details = _setup(ctx, "fid", extractor, num_samples, batch_size, weights)
    ref, ref_info = reference_statistics(ctx.dataset, ex, n, ctx.cache_dir, batch_size)
    fake = feature_statistics(prior_samples(ctx.model, ctx.dataset, n, batch_size, ctx.seed,
                                            ctx.device), ex)
    if ctx.conditional:
        details["labels"] = "drawn from the train split's label frequencies"
    return MetricResult({f"fid_{ex.name}": frechet_distance(fake, ref)},
                        details | {"reference": ref_info, "seed": ctx.seed})


@register_metric("fid_recon", description="FID of reconstructions of test images vs those images: "
                 "fid_recon_domain or fid_recon_inception; lower is better", paper=PAPER,
                 scores={"fid_recon_*": "lower"}, quick_params={"num_samples": 500})
@torch.no_grad()
def fid_recon(ctx: EvalContext, extractor: str = "domain", num_samples: PositiveInt = 10_000,
              batch_size: PositiveInt = 100, weights: str | None = None) -> MetricResult:
    """Reconstructions (decoded posterior means) of the same real images the reference uses."""
    ex, n, details = _setup(ctx, "fid_recon", extractor, num_samples, batch_size, weights)
    ref, ref_info = reference_statistics(ctx.dataset, ex, n, ctx.cache_dir, batch_size)
    idx = real_indices(ctx.dataset, n)
    recons = (ctx.model.reconstruct(x, y)
              for x, y in real_batches(ctx.dataset, idx, batch_size, ctx.device))
    fake = feature_statistics(recons, ex)
    return MetricResult({f"fid_recon_{ex.name}": frechet_distance(fake, ref)},
                        details | {"reference": ref_info})

"""What the registered metrics share: a run's ground truth, its codes, readable details."""

from __future__ import annotations

import numpy as np
import torch

from vaebench.data.base import GroundTruthFactors
from vaebench.errors import NotApplicable
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.code_table import CodeTable
from vaebench.metrics.disentanglement.sampling import CodesOf, Encode, observed_codes, sample_codes

_CACHE_KEY = "disentanglement.code_table"


def ground_truth(ctx: EvalContext, metric: str) -> GroundTruthFactors:
    factors = ctx.dataset.factors
    if factors is None:
        raise NotApplicable(f"{metric} needs a dataset with ground-truth factors; dataset "
                            f"{ctx.dataset.name!r} has none (use e.g. dsprites_procedural)")
    return factors


def model_encoder(ctx: EvalContext, metric: str) -> Encode:
    """encode(images, factor rows) with the run's model; a conditional model gets its label
    from the factor the dataset's labels are (dSprites: shape)."""
    if not ctx.conditional:
        return lambda images, rows: ctx.encode(images)
    names = list(ctx.dataset.factors.factor_names)
    if ctx.dataset.class_name not in names:
        raise NotApplicable(f"{metric}: the model is conditional on the dataset's label "
                            f"{ctx.dataset.class_name!r}, which is not one of its factors {names}")
    column = names.index(ctx.dataset.class_name)
    return lambda images, rows: ctx.encode(images, torch.as_tensor(rows[:, column]))


def run_codes(ctx: EvalContext, metric: str, random_state: np.random.RandomState,
              batch_size: int, code_table: bool = True) -> CodesOf:
    """codes_of for this run's model: the run's shared CodeTable (cached in ctx.cache, so all
    metrics of a run share it), or per-sample encoding (code_table=False, or a dataset whose
    observations are random given their factors)."""
    gt = ground_truth(ctx, metric)
    encode = model_encoder(ctx, metric)
    if not code_table or not getattr(gt, "deterministic", True):
        # random observations (colour dSprites, smallNORB's instance): no fixed code per row
        return observed_codes(gt, encode, random_state, batch_size)
    table = ctx.cache.get(_CACHE_KEY)
    if table is None or table.ground_truth is not gt:
        table = ctx.cache[_CACHE_KEY] = CodeTable(gt, encode)
    return table


def code_table(ctx: EvalContext) -> CodeTable | None:
    """The run's code table if a metric has filled (or the runner preloaded) one."""
    return ctx.cache.get(_CACHE_KEY)


def preload_code_table(ctx: EvalContext, rows: np.ndarray, codes: np.ndarray) -> CodeTable:
    """Start the run's code table from kept codes: those rows are never encoded again (nor is
    the model loaded for them)."""
    table = run_codes(ctx, "code table", np.random.RandomState(0), 1)
    table.preload(rows, codes)
    return table


def train_test_codes(ctx: EvalContext, metric: str, num_train: int, num_test: int,
                     batch_size: int, code_table: bool = True):
    """The reference's draws for the metrics that fit on one sample and score on another (DCI,
    SAP, modularity): ((codes, factors) of num_train points, (codes, factors) of num_test),
    from one RandomState seeded by the evaluation seed."""
    gt = ground_truth(ctx, metric)
    rs = np.random.RandomState(ctx.seed)
    codes_of = run_codes(ctx, metric, rs, batch_size, code_table)
    return (sample_codes(gt, codes_of, num_train, rs, batch_size),
            sample_codes(gt, codes_of, num_test, rs, batch_size))


def name_factors(result: MetricResult, factor_names, keys, **extra) -> MetricResult:
    """details[key] lists in factor order -> {factor name: value}, for a readable metrics.json."""
    details = dict(result.details)
    for key in keys:
        details[key] = dict(zip(factor_names, details[key]))
    details["factor_names"] = list(factor_names)
    details.update(extra)
    return MetricResult(result.scores, details)

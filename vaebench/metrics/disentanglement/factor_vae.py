"""The FactorVAE disentanglement score (Kim & Mnih 2018), disentanglement_lib's
`compute_factor_vae` with the study's settings (prune_dims.threshold = 0.05)."""

from __future__ import annotations

from typing import Callable

from pydantic import PositiveInt
import numpy as np

from vaebench.data.base import GroundTruthFactors
from vaebench.errors import VaebenchError
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.context import ground_truth, run_codes
from vaebench.metrics.disentanglement.sampling import (CodesOf, as_ground_truth, check_counts,
                                                       representation_codes)
from vaebench.registry import register_metric

CHUNK_ROWS = 1 << 16  # codes looked up per step (bounds memory, keeps encoder batches large)


def factorvae_score(ground_truth: GroundTruthFactors, representation_fn: Callable,
                    random_state: np.random.RandomState, *, batch_size: int = 64,
                    num_train: int = 10_000, num_eval: int = 5_000,
                    num_variance_estimate: int = 10_000,
                    prune_threshold: float = 0.05) -> MetricResult:
    """Majority-vote accuracy of predicting which factor was held fixed in a batch from the
    code dimension of least normalized variance.

    ground_truth: any GroundTruthFactors, or a dataset with `.factors`; representation_fn:
    observations (B, C, H, W) -> codes (B, D) (disentanglement_lib's convention). Codes are
    standardized by their std over `num_variance_estimate` points; dims with std <
    prune_threshold are pruned (collapsed to the prior). Each vote fixes one random factor over
    `batch_size` points and votes for the active dim with the least variance relative to its
    global one; the classifier maps each dim to its most-voted factor (`num_train` votes); the
    score is its accuracy on `num_eval` votes.
    scores: factorvae_score (eval accuracy), factorvae_score_train, factorvae_active_dims.
    """
    ground_truth = as_ground_truth(ground_truth)
    codes_of = representation_codes(ground_truth, representation_fn, random_state, batch_size)
    return factorvae_score_of(ground_truth, codes_of, random_state, batch_size=batch_size,
                              num_train=num_train, num_eval=num_eval,
                              num_variance_estimate=num_variance_estimate,
                              prune_threshold=prune_threshold)


def factorvae_score_of(ground_truth: GroundTruthFactors, codes_of: CodesOf,
                       random_state: np.random.RandomState, *, batch_size: int, num_train: int,
                       num_eval: int, num_variance_estimate: int,
                       prune_threshold: float) -> MetricResult:
    """`factorvae_score` with the representation given as codes_of(factor rows) -> codes."""
    if batch_size < 2:
        raise VaebenchError(f"factorvae_score: batch_size must be at least 2 (a variance over "
                            f"the batch); got {batch_size}")
    global_var = np.var(codes_of(ground_truth.sample_factors(num_variance_estimate, random_state)),
                        axis=0, ddof=1)
    active = np.flatnonzero(np.sqrt(global_var) >= prune_threshold)
    details = {"global_variance": global_var.tolist(), "active_dims": active.tolist()}
    if len(active) == 0:
        return MetricResult({"factorvae_score": 0.0, "factorvae_score_train": 0.0,
                             "factorvae_active_dims": 0.0}, details)
    train_votes = _votes(ground_truth, codes_of, random_state, batch_size, num_train,
                         global_var, active)
    classifier = np.argmax(train_votes, axis=0)  # (D,) factor each dim votes for most
    dims = np.arange(len(global_var))
    train_acc = train_votes[classifier, dims].sum() / train_votes.sum()
    eval_votes = _votes(ground_truth, codes_of, random_state, batch_size, num_eval,
                        global_var, active)
    eval_acc = eval_votes[classifier, dims].sum() / eval_votes.sum()
    details.update(votes_train=train_votes.tolist(), votes_eval=eval_votes.tolist(),
                   dim_factor={str(d): int(classifier[d]) for d in active})
    # The reference reports len(active_dims) of a boolean mask, i.e. always D; this is the count.
    return MetricResult({"factorvae_score": float(eval_acc),
                         "factorvae_score_train": float(train_acc),
                         "factorvae_active_dims": float(len(active))}, details)


def _votes(ground_truth, codes_of, random_state, batch_size, num_votes, global_var, active):
    """(K, D) vote counts: votes[factor held fixed, dim of least normalized variance]."""
    k = len(ground_truth.factor_sizes)
    fixed = np.empty(num_votes, dtype=np.int64)
    factors = np.empty((num_votes, batch_size, k), dtype=np.int64)
    for v in range(num_votes):  # the reference's draws, in its order
        fixed[v] = random_state.randint(k)
        factors[v] = ground_truth.sample_factors(batch_size, random_state)
        factors[v, :, fixed[v]] = factors[v, 0, fixed[v]]
    dims = np.empty(num_votes, dtype=np.int64)
    step = max(1, CHUNK_ROWS // batch_size)
    for start in range(0, num_votes, step):
        f = factors[start:start + step]
        codes = codes_of(f.reshape(-1, k)).reshape(len(f), batch_size, -1)
        normalized = np.var(codes, axis=1, ddof=1)[:, active] / global_var[active]
        dims[start:start + step] = active[np.argmin(normalized, axis=1)]
    votes = np.zeros((k, len(global_var)), dtype=np.int64)
    np.add.at(votes, (fixed, dims), 1)
    return votes


@register_metric("factorvae_score", description="FactorVAE score: accuracy of a majority-vote "
                 "classifier naming the factor held fixed from the code dim of least variance",
                 paper="Kim & Mnih 2018, Disentangling by Factorising",
                 # active_dims counts codes left after pruning: more of the code in use
                 scores={"factorvae_score": "higher", "factorvae_score_train": "higher",
                         "factorvae_active_dims": "higher"},
                 quick_params={"num_train": 150, "num_eval": 100, "num_variance_estimate": 1000})
def factorvae_score_metric(ctx: EvalContext, batch_size: PositiveInt = 64, num_train: PositiveInt = 10_000,
                           num_eval: PositiveInt = 5_000, num_variance_estimate: PositiveInt = 10_000,
                           prune_threshold: float = 0.05, code_table: bool = True) -> MetricResult:
    check_counts("factorvae_score", batch_size=batch_size, num_train=num_train,
                 num_eval=num_eval, num_variance_estimate=num_variance_estimate)
    gt = ground_truth(ctx, "factorvae_score")
    rs = np.random.RandomState(ctx.seed)
    result = factorvae_score_of(gt, run_codes(ctx, "factorvae_score", rs, batch_size, code_table),
                                rs, batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                                num_variance_estimate=num_variance_estimate,
                                prune_threshold=prune_threshold)
    names = list(gt.factor_names)
    details = dict(result.details)
    if "dim_factor" in details:
        details["dim_factor"] = {d: names[f] for d, f in details["dim_factor"].items()}
    details["factor_names"] = names
    return MetricResult(result.scores, details)

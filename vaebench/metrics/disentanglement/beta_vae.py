"""The BetaVAE disentanglement score (Higgins et al. 2017), disentanglement_lib's
`compute_beta_vae_sklearn`."""

from __future__ import annotations

import warnings
from typing import Callable

from pydantic import PositiveInt
import numpy as np

from vaebench.data.base import GroundTruthFactors
from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.context import ground_truth, run_codes
from vaebench.metrics.disentanglement.sampling import (CodesOf, as_ground_truth, check_counts,
                                                       representation_codes)
from vaebench.registry import register_metric

CHUNK_ROWS = 1 << 16  # codes looked up per step (bounds memory, keeps encoder batches large)


def betavae_score(ground_truth: GroundTruthFactors, representation_fn: Callable,
                  random_state: np.random.RandomState, *, batch_size: int = 64,
                  num_train: int = 10_000, num_eval: int = 5_000) -> MetricResult:
    """Accuracy of a linear classifier naming the factor two batches share.

    ground_truth: any GroundTruthFactors, or a dataset with `.factors`; representation_fn:
    observations (B, C, H, W) -> codes (B, D) (disentanglement_lib's convention). Each point:
    two batches of `batch_size` with one random factor equal row by row; feature = mean over
    the batch of |code1 - code2| (D,). LogisticRegression fitted on `num_train` points; the
    score is its accuracy on `num_eval` new points.
    scores: betavae_score (eval accuracy), betavae_score_train.
    """
    ground_truth = as_ground_truth(ground_truth)
    codes_of = representation_codes(ground_truth, representation_fn, random_state, batch_size)
    return betavae_score_of(ground_truth, codes_of, random_state, batch_size=batch_size,
                            num_train=num_train, num_eval=num_eval)


def betavae_score_of(ground_truth: GroundTruthFactors, codes_of: CodesOf,
                     random_state: np.random.RandomState, *, batch_size: int, num_train: int,
                     num_eval: int) -> MetricResult:
    """`betavae_score` with the representation given as codes_of(factor rows) -> codes."""
    from sklearn.exceptions import ConvergenceWarning  # here: scikit-learn costs ~1 s to import
    from sklearn.linear_model import LogisticRegression

    x_train, y_train = _points(ground_truth, codes_of, random_state, batch_size, num_train)
    # as the reference: the random state is handed to the classifier (lbfgs draws nothing)
    model = LogisticRegression(random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported in details instead
        model.fit(x_train, y_train)
    train_acc = float(np.mean(model.predict(x_train) == y_train))
    x_eval, y_eval = _points(ground_truth, codes_of, random_state, batch_size, num_eval)
    eval_acc = float(np.mean(model.predict(x_eval) == y_eval))
    return MetricResult({"betavae_score": eval_acc, "betavae_score_train": train_acc},
                        {"converged": bool(np.all(model.n_iter_ < model.max_iter))})


def _points(ground_truth, codes_of, random_state, batch_size, num_points):
    """Features (num_points, D) and labels (num_points,): the factor the two batches share."""
    k = len(ground_truth.factor_sizes)
    labels = np.empty(num_points, dtype=np.int64)
    factors = np.empty((num_points, 2, batch_size, k), dtype=np.int64)
    for p in range(num_points):  # the reference's draws, in its order
        labels[p] = random_state.randint(k)
        factors[p, 0] = ground_truth.sample_factors(batch_size, random_state)
        factors[p, 1] = ground_truth.sample_factors(batch_size, random_state)
        factors[p, 1, :, labels[p]] = factors[p, 0, :, labels[p]]
    features = []
    step = max(1, CHUNK_ROWS // (2 * batch_size))
    for start in range(0, num_points, step):
        f = factors[start:start + step]
        codes = codes_of(f.reshape(-1, k)).reshape(len(f), 2, batch_size, -1)
        features.append(np.mean(np.abs(codes[:, 0] - codes[:, 1]), axis=1))
    return np.concatenate(features), labels


@register_metric("betavae_score", description="BetaVAE score: accuracy of a linear classifier "
                 "naming the factor two batches share from their mean absolute code difference",
                 paper="Higgins et al. 2017, beta-VAE: Learning Basic Visual Concepts with a "
                       "Constrained Variational Framework",
                 scores={"betavae_score": "higher", "betavae_score_train": "higher"},
                 quick_params={"batch_size": 16, "num_train": 100, "num_eval": 50})
def betavae_score_metric(ctx: EvalContext, batch_size: PositiveInt = 64, num_train: PositiveInt = 10_000,
                         num_eval: PositiveInt = 5_000, code_table: bool = True) -> MetricResult:
    check_counts("betavae_score", batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    gt = ground_truth(ctx, "betavae_score")
    rs = np.random.RandomState(ctx.seed)
    result = betavae_score_of(gt, run_codes(ctx, "betavae_score", rs, batch_size, code_table), rs,
                              batch_size=batch_size, num_train=num_train, num_eval=num_eval)
    return MetricResult(result.scores, {**result.details, "factor_names": list(gt.factor_names),
                                        "num_train": num_train, "num_eval": num_eval})

"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018),
disentanglement_lib's `compute_dci`: importances from gradient-boosted trees."""

from __future__ import annotations

from pydantic import PositiveInt
import numpy as np
import scipy.stats
from joblib import Parallel, delayed

from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.context import (ground_truth, name_factors,
                                                      train_test_codes)
from vaebench.metrics.disentanglement.sampling import check_counts
from vaebench.registry import register_metric


def dci(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
        factors_test: np.ndarray, *, n_jobs: int | None = -1,
        random_state: int = 0) -> MetricResult:
    """codes (N, D) float, factors (N, K) int -> DCI disentanglement, completeness (in [0, 1])
    and informativeness (mean test accuracy over factors; higher is better).

    One GradientBoostingClassifier() (scikit-learn defaults: 100 trees of depth 3) per factor,
    on all codes; importance[i, j] = its feature importance of code i. Disentanglement: 1 -
    entropy (base K) of each code's importances over factors, weighted by the code's share of
    total importance; completeness: the same per factor over codes (base D).

    The per-factor fits are independent and run in parallel (n_jobs joblib threads), largest
    factor first; each is seeded with `random_state`, so the importances are identical to a
    sequential loop's. (The reference leaves the trees unseeded: its tie-breaking varies.)
    details: importance (D, K), per_code disentanglement (D,), per_factor completeness (K,),
    accuracy per factor on test (and train), informativeness_train.
    """
    x_train, x_test = np.asarray(codes_train, float), np.asarray(codes_test, float)
    y_train, y_test = np.asarray(factors_train), np.asarray(factors_test)
    k = y_train.shape[1]
    # longest fits first, so two workers finish together (a fit's cost ~ number of classes);
    # threads: scikit-learn builds trees without the GIL, and no worker process has to start
    order = sorted(range(k), key=lambda j: -len(np.unique(y_train[:, j])))
    fits = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(gbt_importance)(
        x_train, y_train[:, j], x_test, y_test[:, j], random_state) for j in order)
    importance = np.zeros((x_train.shape[1], k))
    acc_train, acc_test = np.zeros(k), np.zeros(k)
    for j, (imp, tr, te) in zip(order, fits):
        importance[:, j], acc_train[j], acc_test[j] = imp, tr, te
    per_code, per_factor = disentanglement_per_code(importance), completeness_per_factor(importance)
    scores = {"dci_disentanglement": _weighted(per_code, importance.sum(axis=1), importance),
              "dci_completeness": _weighted(per_factor, importance.sum(axis=0), importance),
              "dci_informativeness": float(acc_test.mean())}
    return MetricResult(scores, {
        "importance": importance.tolist(), "disentanglement_per_code": per_code.tolist(),
        "completeness_per_factor": per_factor.tolist(), "accuracy_per_factor": acc_test.tolist(),
        "accuracy_per_factor_train": acc_train.tolist(),
        "informativeness_train": float(acc_train.mean())})


def gbt_importance(x_train, y_train, x_test, y_test, random_state: int = 0):
    """One factor: (|feature importances| (D,), train accuracy, test accuracy)."""
    from sklearn.ensemble import GradientBoostingClassifier  # here: scikit-learn costs ~1 s to import

    model = GradientBoostingClassifier(random_state=random_state).fit(x_train, y_train)
    return (np.abs(model.feature_importances_), float(np.mean(model.predict(x_train) == y_train)),
            float(np.mean(model.predict(x_test) == y_test)))


def disentanglement_per_code(importance: np.ndarray) -> np.ndarray:
    """(D, K) -> (D,): 1 - entropy of each code's importances over factors, base K."""
    return 1.0 - scipy.stats.entropy(importance.T + 1e-11, base=importance.shape[1])


def completeness_per_factor(importance: np.ndarray) -> np.ndarray:
    """(D, K) -> (K,): 1 - entropy of each factor's importances over codes, base D."""
    return 1.0 - scipy.stats.entropy(importance + 1e-11, base=importance.shape[0])


def _weighted(values, weights, importance) -> float:
    if importance.sum() == 0.0:  # no importance anywhere: equal weights, as the reference
        weights = np.ones_like(weights)
    return float(np.sum(values * (weights / weights.sum())))


@register_metric("dci", description="DCI: disentanglement and completeness from gradient-boosted "
                 "tree importances (code -> factor), informativeness = their test accuracy",
                 paper="Eastwood & Williams 2018, A Framework for the Quantitative Evaluation of "
                       "Disentangled Representations",
                 scores={"dci_disentanglement": "higher", "dci_completeness": "higher",
                         "dci_informativeness": "higher"},
                 quick_params={"num_train": 500, "num_test": 250})
def dci_metric(ctx: EvalContext, num_train: PositiveInt = 10_000, num_test: PositiveInt = 5_000,
               batch_size: PositiveInt = 16, n_jobs: int | None = -1,
               code_table: bool = True) -> MetricResult:
    """n_jobs: factors fitted in parallel (-1: all cores); scores do not depend on it."""
    check_counts("dci", num_train=num_train, num_test=num_test, batch_size=batch_size)
    gt = ground_truth(ctx, "dci")
    (codes_train, factors_train), (codes_test, factors_test) = train_test_codes(
        ctx, "dci", num_train, num_test, batch_size, code_table)
    result = dci(codes_train, factors_train, codes_test, factors_test, n_jobs=n_jobs,
                 random_state=ctx.seed)
    return name_factors(result, gt.factor_names, ["completeness_per_factor", "accuracy_per_factor",
                        "accuracy_per_factor_train"], num_train=num_train, num_test=num_test)

"""Separated Attribute Predictability (Kumar et al. 2018), disentanglement_lib's `compute_sap`
with discrete factors (the study setting)."""

from __future__ import annotations

from pydantic import PositiveInt
import numpy as np
from joblib import Parallel, delayed

from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.context import (ground_truth, name_factors,
                                                      train_test_codes)
from vaebench.metrics.disentanglement.sampling import check_counts
from vaebench.registry import register_metric


def _accuracy(x_train, y_train, x_test, y_test) -> float:
    from sklearn.svm import LinearSVC  # here: scikit-learn costs ~1 s to import

    clf = LinearSVC(C=0.01, class_weight="balanced", random_state=0)
    clf.fit(x_train, y_train)
    return float(np.mean(clf.predict(x_test) == y_test))


def sap(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
        factors_test: np.ndarray, *, n_jobs: int | None = -1) -> MetricResult:
    """codes (N, D) float, factors (N, K) int -> SAP in [0, 1].

    For every (code, factor) pair, the test accuracy of LinearSVC(C=0.01, class_weight=
    "balanced") predicting the factor from that one unstandardized code; per factor the gap
    between the two best codes; mean over factors.
    details: per_factor (K,) gaps, accuracy (D, K).

    Note: scikit-learn >= 1.3 solves this LinearSVC in the primal (dual="auto"); the
    reference's scikit-learn solved the dual. Same optimum up to solver tolerance; the primal
    is deterministic and converges. n_jobs: the (code, factor) fits run in parallel (joblib
    threads); each fit is deterministic, so the result equals a sequential loop's.
    """
    codes_train, codes_test = np.asarray(codes_train, float), np.asarray(codes_test, float)
    factors_train, factors_test = np.asarray(factors_train), np.asarray(factors_test)
    if codes_train.ndim != 2 or codes_train.shape[1] < 2:
        raise ValueError(f"SAP needs codes (N, D) with D >= 2; got shape {codes_train.shape}")
    d, k = codes_train.shape[1], factors_train.shape[1]
    accuracy = np.zeros((d, k))
    pairs = []
    for j in range(k):
        if len(np.unique(factors_train[:, j])) < 2:  # one class: every classifier predicts it
            accuracy[:, j] = np.mean(factors_test[:, j] == factors_train[0, j])
        else:
            pairs += [(i, j) for i in range(d)]
    fits = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_accuracy)(codes_train[:, i:i + 1], factors_train[:, j], codes_test[:, i:i + 1],
                           factors_test[:, j]) for i, j in pairs)
    for (i, j), acc in zip(pairs, fits):
        accuracy[i, j] = acc
    top_two = -np.sort(-accuracy, axis=0)[:2]
    per_factor = top_two[0] - top_two[1]
    return MetricResult({"sap": float(np.mean(per_factor))},
                        {"per_factor": per_factor.tolist(), "accuracy": accuracy.tolist()})


@register_metric("sap", description="SAP score: per factor, the gap in linear-SVM accuracy "
                 "between the two codes that predict it best (higher = more disentangled)",
                 paper="Kumar et al. 2018, Variational Inference of Disentangled Latent Concepts "
                       "from Unlabeled Observations",
                 scores={"sap": "higher"}, quick_params={"num_train": 500, "num_test": 250})
def sap_metric(ctx: EvalContext, num_train: PositiveInt = 10_000, num_test: PositiveInt = 5_000,
               batch_size: PositiveInt = 16, n_jobs: int | None = -1, code_table: bool = True) -> MetricResult:
    check_counts("sap", num_train=num_train, num_test=num_test, batch_size=batch_size)
    gt = ground_truth(ctx, "sap")
    (codes_train, factors_train), (codes_test, factors_test) = train_test_codes(
        ctx, "sap", num_train, num_test, batch_size, code_table)
    result = sap(codes_train, factors_train, codes_test, factors_test, n_jobs=n_jobs)
    return name_factors(result, gt.factor_names, ["per_factor"], num_train=num_train,
                        num_test=num_test)

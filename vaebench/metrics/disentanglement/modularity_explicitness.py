"""Modularity and explicitness (Ridgeway & Mozer 2018), disentanglement_lib's
`compute_modularity_explicitness`."""

from __future__ import annotations

import warnings

import numpy as np
from pydantic import PositiveInt
from joblib import Parallel, delayed

from vaebench.metrics.base import EvalContext, MetricResult
from vaebench.metrics.disentanglement.context import (ground_truth, name_factors,
                                                      train_test_codes)
from vaebench.metrics.disentanglement.mutual_info import histogram_discretize, mutual_info_matrix
from vaebench.metrics.disentanglement.sampling import check_counts
from vaebench.registry import register_metric


def modularity(codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20) -> MetricResult:
    """codes (N, D) float, factors (N, K) int -> modularity in [0, 1].

    From the (D, K) mutual information of the discretized codes: a code is modular when its
    information is about one factor, 1 - sum_{j != top} MI^2 / (MI_top^2 (K - 1)); a code with
    no information about any factor scores 0. Mean over codes.
    details: per_code (D,), mutual_info (D, K) in nats.
    """
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] < 2:
        raise ValueError(f"modularity needs factors (N, K) with K >= 2; got shape {factors.shape}")
    mi = mutual_info_matrix(histogram_discretize(codes, num_bins), factors)
    squared = mi**2
    top = squared.max(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_code = 1.0 - (squared.sum(axis=1) - top) / (top * (squared.shape[1] - 1))
    per_code[top == 0] = 0.0
    return MetricResult({"modularity": float(per_code.mean())},
                        {"per_code": per_code.tolist(), "mutual_info": mi.tolist()})


def explicitness(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
                 factors_test: np.ndarray, *, n_jobs: int | None = -1) -> MetricResult:
    """Mean over factors of the test ROC-AUC (one-vs-rest, macro over classes) of a
    LogisticRegression() predicting the factor from all codes, standardized with the training
    mean and std (a constant code is left at 0 rather than divided by 0).
    details: per_factor_train / per_factor (test) AUC, converged (did lbfgs converge).
    n_jobs: factors fitted in parallel (joblib threads); the fits are deterministic.
    """
    codes_train, codes_test = np.asarray(codes_train, float), np.asarray(codes_test, float)
    factors_train, factors_test = np.asarray(factors_train), np.asarray(factors_test)
    mean, std = codes_train.mean(axis=0), codes_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x_train, x_test = (codes_train - mean) / std, (codes_test - mean) / std
    fits = Parallel(n_jobs=n_jobs, prefer="threads")(
        delayed(_explicitness_one)(x_train, factors_train[:, j], x_test, factors_test[:, j])
        for j in range(factors_train.shape[1]))
    train, test, converged = (list(v) for v in zip(*fits))
    return MetricResult({"explicitness": float(np.mean(test))},
                        {"per_factor": test, "per_factor_train": train, "converged": converged,
                         "explicitness_train": float(np.mean(train))})


def _explicitness_one(x_train, y_train, x_test, y_test):
    from sklearn.exceptions import ConvergenceWarning  # here: scikit-learn costs ~1 s to import
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        # the protocol is LogisticRegression() as is; non-convergence is reported, not raised
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression().fit(x_train, y_train)
    converged = bool(np.all(clf.n_iter_ < clf.max_iter))
    return (_macro_auc(clf, x_train, y_train), _macro_auc(clf, x_test, y_test), converged)


def _macro_auc(clf, x, y) -> float:
    """ROC-AUC of each class's probability against "is this class", averaged over classes.
    Same as the reference's MultiLabelBinarizer + roc_auc_score when every class appears in
    both splits; a class missing from one split is left out instead of raising."""
    from sklearn.metrics import roc_auc_score

    proba = clf.predict_proba(x)
    aucs = [roc_auc_score(y == c, proba[:, i]) for i, c in enumerate(clf.classes_)
            if 0 < np.sum(y == c) < len(y)]
    return float(np.mean(aucs))


@register_metric("modularity", description="modularity (each code informs about one factor) "
                 "from the discretized mutual information, and explicitness (ROC-AUC of a linear "
                 "classifier from all codes to each factor)",
                 paper="Ridgeway & Mozer 2018, Learning Deep Disentangled Embeddings with the "
                       "F-Statistic Loss",
                 scores={"modularity": "higher", "modularity_explicitness": "higher"},
                 quick_params={"num_train": 500, "num_test": 250})
def modularity_metric(ctx: EvalContext, num_train: PositiveInt = 10_000, num_test: PositiveInt = 5_000,
                      batch_size: PositiveInt = 16, num_bins: PositiveInt = 20, n_jobs: int | None = -1,
                      explicitness: bool = True, code_table: bool = True) -> MetricResult:
    """disentanglement_lib's modularity_explicitness; explicitness=False skips the explicitness
    half (one multinomial logistic regression per factor, ~99% of the metric's time)."""
    check_counts("modularity", num_train=num_train, num_test=num_test, batch_size=batch_size,
                 num_bins=num_bins)
    gt = ground_truth(ctx, "modularity")
    (codes_train, factors_train), (codes_test, factors_test) = train_test_codes(
        ctx, "modularity", num_train, num_test, batch_size, code_table)
    mod = modularity(codes_train, factors_train, num_bins=num_bins)
    if not explicitness:
        return name_factors(MetricResult({"modularity": mod.scores["modularity"]}, mod.details),
                            gt.factor_names, [], num_train=num_train, num_test=num_test)
    exp = _explicitness(codes_train, factors_train, codes_test, factors_test, n_jobs=n_jobs)
    details = {**mod.details, "explicitness_per_factor": exp.details["per_factor"],
               "explicitness_per_factor_train": exp.details["per_factor_train"],
               "explicitness_converged": exp.details["converged"],
               "explicitness_train": exp.details["explicitness_train"]}
    result = MetricResult({"modularity": mod.scores["modularity"],
                           "modularity_explicitness": exp.scores["explicitness"]}, details)
    return name_factors(result, gt.factor_names, ["explicitness_per_factor",
                        "explicitness_per_factor_train", "explicitness_converged"],
                        num_train=num_train, num_test=num_test)


_explicitness = explicitness  # the function, under a name the metric's parameter does not shadow

"""Histogram discretization and the discrete mutual information behind MIG and modularity.

Matches disentanglement_lib (evaluation/metrics/utils.py): each code is cut into `num_bins`
equal-width bins over its own sample range (`np.digitize` against `np.histogram`'s left edges,
so bins are 1..num_bins), and mutual information is sklearn's `mutual_info_score`, in nats.
Here the whole (code x factor) matrix comes from one joint histogram instead of D x K calls.
"""

from __future__ import annotations

import numpy as np


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """codes (N, D) float -> (N, D) int64 bin of each value, in 1..num_bins.

    A constant code gets the range (c - 0.5, c + 0.5), as np.histogram does, so all its values
    share one bin (and it carries no information) instead of raising.
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be (N, D); got shape {codes.shape}")
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):  # D is small; the bin edges are exactly np.histogram's
        left_edges = np.histogram_bin_edges(codes[:, j], bins=num_bins)[:-1]
        out[:, j] = np.digitize(codes[:, j], left_edges)
    return out


def _class_indices(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, M) discrete values -> (N, M) int64 class index per column and (M,) class counts."""
    idx = np.empty(a.shape, dtype=np.int64)
    sizes = np.empty(a.shape[1], dtype=np.int64)
    for j in range(a.shape[1]):
        values, idx[:, j] = np.unique(a[:, j], return_inverse=True)
        sizes[j] = len(values)
    return idx, sizes


def mutual_info_matrix(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Discrete mutual information (nats) of every code with every factor: (D, K).

    discrete_codes: (N, D) and factors: (N, K), any discrete values (e.g. bins, class indices).
    All D x K joint histograms come from one `bincount` over padded (code, factor, a, b) cells.
    """
    discrete_codes, factors = np.asarray(discrete_codes), np.asarray(factors)
    if discrete_codes.ndim != 2 or factors.ndim != 2 or len(discrete_codes) != len(factors):
        raise ValueError(f"need codes (N, D) and factors (N, K) with the same N; got "
                         f"{discrete_codes.shape} and {factors.shape}")
    a, a_sizes = _class_indices(discrete_codes)
    b, b_sizes = _class_indices(factors)
    n, d = a.shape
    k = b.shape[1]
    na, nb = int(a_sizes.max()), int(b_sizes.max())
    pair = (np.arange(d)[:, None] * k + np.arange(k)[None, :])  # (D, K)
    cell = ((pair[None] * na + a[:, :, None]) * nb + b[:, None, :]).ravel()
    joint = np.bincount(cell, minlength=d * k * na * nb).reshape(d, k, na, nb).astype(np.float64)
    n_a = joint.sum(axis=3, keepdims=True)  # (D, K, na, 1): code marginals
    n_b = joint.sum(axis=2, keepdims=True)  # (D, K, 1, nb): factor marginals
    nonzero = joint > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # p(a,b) log(p(a,b) / (p(a) p(b))) with counts; the ratio of integer products is exactly
        # 1 for an independent cell (e.g. a constant code), so its term is exactly 0
        terms = joint * np.log(joint * n / (n_a * n_b))
    mi = np.where(nonzero, terms, 0.0).sum(axis=(2, 3)) / n
    return np.clip(mi, 0.0, None)


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of each column of (N, K) discrete values: (K,)."""
    b, sizes = _class_indices(np.asarray(factors))
    h = np.empty(b.shape[1])
    for j in range(b.shape[1]):
        p = np.bincount(b[:, j], minlength=sizes[j]) / len(b)
        h[j] = -np.sum(p * np.log(p))
    return h

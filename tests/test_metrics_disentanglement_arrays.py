"""The disentanglement metrics on plain arrays: known answers, and the deterministic ones
(discretization, mutual information, MIG, modularity) against slow, obvious implementations."""

import math
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from vaebench.metrics import dci, explicitness, mig, modularity, sap
from vaebench.metrics.disentanglement.dci import gbt_importance
from vaebench.metrics.disentanglement.mutual_info import (discrete_entropy, histogram_discretize,
                                                          mutual_info_matrix)

SIZES = [3, 4, 5, 6]


def sample(n, seed):
    """factors (n, 4) and codes that are the factors themselves, standardized."""
    rs = np.random.RandomState(seed)
    factors = np.stack([rs.randint(s, size=n) for s in SIZES], axis=1)
    codes = (factors - factors.mean(0)) / factors.std(0)
    return codes, factors


def rotation(d, seed=0):
    q, _ = np.linalg.qr(np.random.RandomState(seed).randn(d, d))
    return q


# ---- slow, obviously correct definitions ------------------------------------------------------

def slow_discretize(codes, num_bins):
    out = np.zeros(codes.shape, dtype=int)
    for j in range(codes.shape[1]):
        lo, hi = codes[:, j].min(), codes[:, j].max()
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
        left_edges = [lo + b * ((hi - lo) / num_bins) for b in range(num_bins)]
        for n, v in enumerate(codes[:, j]):
            out[n, j] = sum(v >= e for e in left_edges)
    return out


def slow_mutual_info(x, y):
    n = len(x)
    joint, px, py = Counter(zip(x, y)), Counter(x), Counter(y)
    return sum(c / n * math.log(n * c / (px[a] * py[b])) for (a, b), c in joint.items())


def slow_entropy(y):
    n = len(y)
    return -sum(c / n * math.log(c / n) for c in Counter(y).values())


def slow_mi_matrix(discrete, factors):
    return np.array([[slow_mutual_info(list(discrete[:, i]), list(factors[:, j]))
                      for j in range(factors.shape[1])] for i in range(discrete.shape[1])])


def slow_mig(codes, factors, num_bins=20):
    m = slow_mi_matrix(slow_discretize(codes, num_bins), factors)
    gaps = []
    for j in range(factors.shape[1]):
        top = sorted(m[:, j], reverse=True)
        gaps.append((top[0] - top[1]) / slow_entropy(list(factors[:, j])))
    return sum(gaps) / len(gaps)


def slow_modularity(codes, factors, num_bins=20):
    m = slow_mi_matrix(slow_discretize(codes, num_bins), factors)
    k, scores = m.shape[1], []
    for row in m:
        top = max(v * v for v in row)
        if top == 0:
            scores.append(0.0)
            continue
        scores.append(1 - (sum(v * v for v in row) - top) / (top * (k - 1)))
    return sum(scores) / len(scores)


def mixed_codes(n=600, seed=3):
    """Codes that partly follow the factors, plus noise and a constant code."""
    codes, factors = sample(n, seed)
    rs = np.random.RandomState(seed + 1)
    mixed = codes @ rotation(4, seed)[:, :3] * [1.0, 0.3, 2.0] + 0.5 * rs.randn(n, 3)
    return np.hstack([codes[:, :2] + 0.3 * rs.randn(n, 2), mixed, np.full((n, 1), 0.7)]), factors


# ---- deterministic parts to 1e-9 --------------------------------------------------------------

def test_discretization_matches_definition_and_reference():
    codes, _ = mixed_codes()
    for bins in (20, 7):
        got = histogram_discretize(codes, bins)
        np.testing.assert_array_equal(got, slow_discretize(codes, bins))
        # disentanglement_lib's _histogram_discretize, on (D, N)
        ref = np.stack([np.digitize(c, np.histogram(c, bins)[1][:-1]) for c in codes.T], axis=1)
        np.testing.assert_array_equal(got, ref)
    assert got.min() >= 1 and got.max() <= 7
    assert np.all(got[:, -1] == got[0, -1])  # the constant code: one bin, no crash


def test_mutual_info_matrix_and_entropy_match_definition_and_sklearn():
    codes, factors = mixed_codes()
    discrete = histogram_discretize(codes)
    m = mutual_info_matrix(discrete, factors)
    np.testing.assert_allclose(m, slow_mi_matrix(discrete, factors), rtol=0, atol=1e-9)
    sk = [[mutual_info_score(factors[:, j], discrete[:, i]) for j in range(4)] for i in range(6)]
    np.testing.assert_allclose(m, sk, rtol=0, atol=1e-9)
    np.testing.assert_allclose(discrete_entropy(factors),
                               [slow_entropy(list(factors[:, j])) for j in range(4)], atol=1e-12)
    assert np.all(m[-1] == 0)  # a constant code carries no information


def test_mig_and_modularity_match_definition():
    for codes, factors in (mixed_codes(), sample(500, 1)):
        assert abs(mig(codes, factors).scores["mig"] - slow_mig(codes, factors)) < 1e-9
        assert abs(modularity(codes, factors).scores["modularity"]
                   - slow_modularity(codes, factors)) < 1e-9
        assert abs(mig(codes, factors, num_bins=5).scores["mig"]
                   - slow_mig(codes, factors, 5)) < 1e-9


# ---- known answers ---------------------------------------------------------------------------

def test_mig_known_answers():
    codes, factors = sample(3000, 0)
    top = mig(codes, factors).scores["mig"]
    assert top > 0.95
    assert mig(np.tanh(codes) * 3 + 1, factors).scores["mig"] > 0.95  # monotone transform
    rotated = mig(codes @ rotation(4), factors).scores["mig"]
    assert rotated < top - 0.3
    noise = np.random.RandomState(1).randn(3000, 4)
    assert mig(noise, factors).scores["mig"] < 0.02
    perm = [2, 0, 3, 1]
    assert mig(codes[:, perm], factors).scores["mig"] == pytest.approx(top, abs=1e-12)
    duplicated = mig(np.hstack([codes, codes[:, :1]]), factors)
    assert duplicated.scores["mig"] < top - 0.2
    assert duplicated.details["per_factor"][0] == pytest.approx(0.0, abs=1e-12)
    dead = np.hstack([codes, np.zeros((3000, 1))])  # a collapsed code changes nothing
    assert mig(dead, factors).scores["mig"] == pytest.approx(top, abs=1e-12)


def test_modularity_known_answers():
    codes, factors = sample(3000, 0)
    top = modularity(codes, factors).scores["modularity"]
    assert top > 0.95
    assert modularity(codes @ rotation(4), factors).scores["modularity"] < top - 0.2
    assert modularity(codes[:, [3, 1, 0, 2]], factors).scores["modularity"] == pytest.approx(top)
    dead = modularity(np.hstack([codes, np.zeros((3000, 1))]), factors)
    assert dead.details["per_code"][-1] == 0.0  # no information: scored 0, not a crash


def test_explicitness_known_answers():
    codes, factors = sample(1500, 0)
    test_codes, test_factors = sample(800, 1)
    top = explicitness(codes, factors, test_codes, test_factors).scores["explicitness"]
    assert top > 0.9
    rs = np.random.RandomState(2)
    noise = explicitness(rs.randn(1500, 4), factors, rs.randn(800, 4), test_factors)
    assert abs(noise.scores["explicitness"] - 0.5) < 0.05  # chance AUC
    dead = np.hstack([codes, np.ones((1500, 1))]), np.hstack([test_codes, np.ones((800, 1))])
    assert explicitness(dead[0], factors, dead[1], test_factors).scores["explicitness"] > 0.9


def test_sap_known_answers():
    codes, factors = sample(1000, 0)
    test_codes, test_factors = sample(500, 1)
    top = sap(codes, factors, test_codes, test_factors)
    assert top.scores["sap"] > 0.2
    assert np.argmax(top.details["accuracy"], axis=0).tolist() == [0, 1, 2, 3]
    rs = np.random.RandomState(2)
    noise = sap(rs.randn(1000, 4), factors, rs.randn(500, 4), test_factors)
    assert noise.scores["sap"] < 0.05
    perm = [1, 3, 0, 2]
    assert sap(codes[:, perm], factors, test_codes[:, perm], test_factors).scores["sap"] == \
        pytest.approx(top.scores["sap"], abs=1e-12)
    dead = sap(np.hstack([codes, np.zeros((1000, 1))]), factors,
               np.hstack([test_codes, np.zeros((500, 1))]), test_factors)
    # a constant code can only name one class per factor (it may still be the second best)
    most_frequent = [np.bincount(test_factors[:, j]).max() / 500 for j in range(4)]
    assert np.all(np.array(dead.details["accuracy"][-1]) <= np.array(most_frequent) + 1e-12)


def test_dci_known_answers_and_parallel_equals_sequential():
    # few classes keep the 100-tree boosting cheap (one tree per class and stage)
    rs = np.random.RandomState(0)
    factors, test_factors = (np.stack([rs.randint(s, size=n) for s in (2, 3, 2)], axis=1)
                             for n in (300, 150))
    dead = np.zeros((300, 1)), np.zeros((150, 1))
    codes, test_codes = np.hstack([factors, dead[0]]), np.hstack([test_factors, dead[1]])
    top = dci(codes, factors, test_codes, test_factors, n_jobs=2)
    assert top.scores["dci_disentanglement"] > 0.95
    assert top.scores["dci_completeness"] > 0.95
    assert top.scores["dci_informativeness"] == 1.0
    importance = np.array(top.details["importance"])
    assert np.all(importance[-1] == 0)  # the dead code
    # the reference's sequential loop, seeded the same way: identical importances
    sequential = np.stack([gbt_importance(codes, factors[:, j], test_codes, test_factors[:, j])[0]
                           for j in range(3)], axis=1)
    np.testing.assert_array_equal(importance, sequential)
    noise = dci(rs.randn(300, 3), factors, rs.randn(150, 3), test_factors, n_jobs=1)
    assert noise.scores["dci_disentanglement"] < 0.3
    assert noise.scores["dci_informativeness"] < 0.6  # chance is about 0.44

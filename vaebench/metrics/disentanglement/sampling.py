"""Drawing ground-truth factors in disentanglement_lib's order, and turning them into codes.

Every metric here sees the representation through one function, `codes_of(factors)`: factor
rows (N, K) -> codes (N, D). Two implementations give the same codes:
- `observed_codes`: render each row's observation and encode it, in the reference's batch
  sizes (what disentanglement_lib does; the public functions use it);
- `CodeTable` (code_table.py): look each row up in a table of the grid's codes, encoding every
  distinct image at most once (what a suite run uses).
They agree bit for bit when an image's code does not depend on the batch it is encoded in;
CPU convolution kernels chosen per batch size can move codes by ~1e-8.

The metrics draw factors first, with exactly the random-state calls the reference makes and in
its order, and ask for codes afterwards. For a factor grid, where an observation is a fixed
function of its factors and costs no randomness, every metric therefore sees exactly the
reference's points; for a dataset with random observations only the interleaving differs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from vaebench.data.base import GroundTruthFactors
from vaebench.errors import NotApplicable, VaebenchError

CodesOf = Callable[[np.ndarray], np.ndarray]  # factor rows (N, K) int -> codes (N, D)
# encode(observations (B, C, H, W), factor rows (B, K)) -> (B, D); the rows give a conditional
# model its label.
Encode = Callable[[torch.Tensor, np.ndarray], np.ndarray]


def observed_codes(ground_truth: GroundTruthFactors, encode: Encode,
                   random_state: np.random.RandomState, batch_size: int) -> CodesOf:
    """codes_of that renders and encodes `batch_size` rows at a time (per-sample encoding)."""

    def codes_of(factors: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(factors), batch_size):
            rows = factors[start:start + batch_size]
            images = ground_truth.sample_observations_from_factors(rows, random_state)
            out.append(np.asarray(encode(images, rows), dtype=np.float64))
        return np.concatenate(out)

    return codes_of


def representation_codes(ground_truth: GroundTruthFactors, representation_fn: Callable,
                         random_state: np.random.RandomState, batch_size: int) -> CodesOf:
    """codes_of for a disentanglement_lib-style `representation_fn(observations) -> (B, D)`."""
    return observed_codes(ground_truth, lambda images, rows: representation_fn(images),
                          random_state, batch_size)


def as_ground_truth(obj) -> GroundTruthFactors:
    """A GroundTruthFactors, or a dataset that carries one as `.factors`."""
    if not hasattr(obj, "sample_factors") and hasattr(obj, "factors"):
        if obj.factors is None:
            name = getattr(obj, "name", obj)
            raise NotApplicable(f"dataset {name!r} has no ground-truth factors")
        return obj.factors
    return obj


def sample_factors_batched(ground_truth: GroundTruthFactors, num: int,
                           random_state: np.random.RandomState, batch_size: int) -> np.ndarray:
    """(num, K) factor rows drawn `batch_size` at a time, as `generate_batch_factor_code` does
    (the batch size changes which numbers each row gets)."""
    parts = [ground_truth.sample_factors(min(batch_size, num - start), random_state)
             for start in range(0, num, batch_size)]
    return np.concatenate(parts).astype(np.int64)


def sample_codes(ground_truth: GroundTruthFactors, codes_of: CodesOf, num: int,
                 random_state: np.random.RandomState, batch_size: int = 16):
    """`num` random points: codes (num, D) float64 and their factors (num, K) int64."""
    factors = sample_factors_batched(ground_truth, num, random_state, batch_size)
    return codes_of(factors), factors


def check_counts(metric: str, **counts) -> None:
    """Budgets from a suite: positive integers, else an error naming the metric and parameter."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise VaebenchError(f"metric {metric}: parameter {name} must be a positive integer; "
                                f"got {value!r}")

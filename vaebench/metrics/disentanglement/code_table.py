"""The codes of a factor grid's images, each encoded at most once per model.

The sampling scores ask for millions of codes (BetaVAE's 15,000 pairs of 64-image batches
alone are 1.9M encoder calls on a 737,280-image grid). Each grid row is a fixed image, so its
code is computed the first time any metric of the run asks for it and looked up afterwards:
the same codes, hence exactly the same scores, as encoding every sampled observation.
"""

from __future__ import annotations

import numpy as np

from vaebench.data.base import GroundTruthFactors
from vaebench.metrics.disentanglement.sampling import Encode


class CodeTable:
    """codes_of(factors) answered from a lazily filled (grid size, D) table.

    Rows are encoded in chunks of `chunk` images as metrics first ask for them;
    `num_encoded` counts the images encoded so far (each grid row at most once).
    """

    def __init__(self, ground_truth: GroundTruthFactors, encode: Encode, chunk: int = 4096):
        self.ground_truth = ground_truth
        self.encode = encode
        self.chunk = chunk
        self.grid_size = int(np.prod(ground_truth.factor_sizes))
        self._known = np.zeros(self.grid_size, dtype=bool)
        self._codes: np.ndarray | None = None  # allocated once the code size is known
        self.num_encoded = 0

    def __call__(self, factors: np.ndarray) -> np.ndarray:
        factors = np.asarray(factors, dtype=np.int64)
        rows = np.asarray(self.ground_truth.index_of(factors), dtype=np.int64)
        new = ~self._known[rows]
        if new.any():
            new_rows, first = np.unique(rows[new], return_index=True)
            self._encode_rows(new_rows, factors[new][first])
        return self._codes[rows]

    def known(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, codes) of every grid row encoded so far, rows ascending."""
        rows = np.flatnonzero(self._known)
        return rows, (self._codes[rows] if self._codes is not None else np.zeros((0, 0)))

    def preload(self, rows: np.ndarray, codes: np.ndarray) -> None:
        """Rows whose codes are already known (kept from an earlier evaluation)."""
        if len(rows) == 0:
            return
        if self._codes is None:
            self._codes = np.empty((self.grid_size, codes.shape[1]), dtype=np.float64)
        self._codes[rows] = codes
        self._known[rows] = True

    def _encode_rows(self, rows: np.ndarray, factors: np.ndarray) -> None:
        for start in range(0, len(rows), self.chunk):
            r, f = rows[start:start + self.chunk], factors[start:start + self.chunk]
            codes = np.asarray(self.encode(self.ground_truth.images_at(r), f), dtype=np.float64)
            if self._codes is None:
                # np.empty: pages of rows never asked for are never touched (no memory cost)
                self._codes = np.empty((self.grid_size, codes.shape[1]), dtype=np.float64)
            self._codes[r] = codes
            self._known[r] = True
            self.num_encoded += len(r)

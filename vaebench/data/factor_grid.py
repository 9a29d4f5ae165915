"""Ground-truth datasets stored as a complete factor grid: the shared factor interface and split.

Shapes3D, MPI3D, Cars3D and smallNORB all hold one image per combination of their factors, in
row-major order of the factors as disentanglement_lib lists them (row = sum_k class_k * stride_k,
the last factor fastest). A loader only has to say how to read the images of some grid rows;
`GridFactors` gives the metrics disentanglement_lib's `GroundTruthData` over it and
`GridDataset` gives the trainer its splits.

Factors that are not latent (smallNORB's instance) are drawn uniformly for every observation,
as disentanglement_lib's `SplitDiscreteStateSpace.sample_all_factors` does, with the metric's
random state; such a grid has `deterministic = False` (an observation is not a fixed function of
its factors), so the metrics encode every observation instead of reusing a code table.

Split (as dsprites_grid.py): a fixed test set of `test_size` grid rows drawn by a seeded
permutation (seed 0), train = the other rows (or a seeded subset of `train_size`). The
disentanglement metrics always sample from the whole grid, as the reference does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from vaebench.data.base import ImageDataset
from vaebench.errors import VaebenchError

# read(rows (B,) int64 grid rows) -> (B, C, H, W) uint8
ReadRows = Callable[[np.ndarray], np.ndarray]


def strides(sizes) -> np.ndarray:
    """Row-major strides of a grid: strides([4, 24, 183]) = [4392, 183, 1]."""
    sizes = [int(s) for s in sizes]
    return np.array([int(np.prod(sizes[i + 1:])) for i in range(len(sizes))], dtype=np.int64)


def check_sizes(path, found, official, what: str) -> None:
    """A file whose grid differs from the official one is an error (a truncated or wrong file)."""
    if list(found) != list(official):
        raise VaebenchError(
            f"{path}: {what} has factor sizes {list(found)}; the official file has "
            f"{list(official)}. The file is truncated or not the official one: download it again "
            f"(see README.md, 'Datasets'). Passing factor_sizes is only for small test files.")


def sorted_unique_read(read: ReadRows, rows: np.ndarray) -> np.ndarray:
    """Read rows in increasing order, each once (what h5py and memory maps read fastest), and
    return them in the order asked."""
    unique, inverse = np.unique(rows, return_inverse=True)
    return read(unique)[inverse]


class GridFactors:
    """disentanglement_lib's GroundTruthData over a complete grid.

    all_names / all_sizes: every factor of the stored grid, in its row-major order.
    latent: indices of the factors the metrics see (all of them unless a factor is a nuisance).
    read: grid rows -> uint8 images (B, C, H, W).
    """

    def __init__(self, all_names, all_sizes, read: ReadRows, latent=None):
        self.all_names, self.all_sizes = list(all_names), [int(s) for s in all_sizes]
        self.latent = list(range(len(self.all_sizes))) if latent is None else list(latent)
        self.nuisance = [i for i in range(len(self.all_sizes)) if i not in self.latent]
        self.factor_names = [self.all_names[i] for i in self.latent]
        self.factor_sizes = [self.all_sizes[i] for i in self.latent]
        self.deterministic = not self.nuisance
        self.num_rows = int(np.prod(self.all_sizes))
        self._strides = strides(self.all_sizes)
        self._read = read

    def sample_factors(self, num, random_state):
        # one randint per factor, in factor order: sample_latent_factors of the reference
        return np.stack([random_state.randint(n, size=num) for n in self.factor_sizes], axis=1)

    def rows_of(self, all_factors: np.ndarray) -> np.ndarray:
        """(N, all factors) classes -> (N,) grid rows."""
        return np.asarray(all_factors, dtype=np.int64) @ self._strides

    def all_factors_of(self, rows) -> np.ndarray:
        """(N,) grid rows -> (N, all factors) classes."""
        rows = np.asarray(rows, dtype=np.int64)
        return (rows[:, None] // self._strides) % np.array(self.all_sizes)

    def index_of(self, factors):
        if self.nuisance:
            raise ValueError("index_of: this grid has nuisance factors "
                             f"{[self.all_names[i] for i in self.nuisance]}, so a factor tuple "
                             "names several images (check `deterministic` first)")
        return self.rows_of(factors)

    def images_at(self, indices):
        rows = np.asarray(torch.as_tensor(indices).cpu().numpy(), dtype=np.int64)
        return torch.from_numpy(np.ascontiguousarray(sorted_unique_read(self._read, rows))).float() / 255.0

    def sample_observations_from_factors(self, factors, random_state):
        factors = np.asarray(factors, dtype=np.int64)
        full = np.zeros((len(factors), len(self.all_sizes)), dtype=np.int64)
        full[:, self.latent] = factors
        for i in self.nuisance:  # sample_all_factors: the other factors, uniformly, in order
            full[:, i] = random_state.randint(self.all_sizes[i], size=len(factors))
        return self.images_at(self.rows_of(full))


class GridDataset(ImageDataset):
    """A GridFactors with a seeded train/test split of its rows; labels = the factor `label`."""

    def __init__(self, name: str, factors: GridFactors, image_shape, label: str,
                 test_size: int, train_size: int | None = None, seed: int = 0):
        self.name, self.factors, self.image_shape = name, factors, tuple(image_shape)
        if not 0 < test_size < factors.num_rows:
            raise VaebenchError(f"dataset {name}: test_size must be between 1 and "
                                f"{factors.num_rows - 1} (the grid has {factors.num_rows} images); "
                                f"got {test_size}")
        perm = torch.randperm(factors.num_rows, generator=torch.Generator().manual_seed(seed))
        train = perm[test_size:] if train_size is None else perm[test_size:test_size + train_size]
        self.rows = {"train": train.sort().values, "test": perm[:test_size].sort().values}
        column = factors.all_names.index(label)
        self.class_name, self.num_classes = label, factors.all_sizes[column]
        self._labels = {s: torch.from_numpy(factors.all_factors_of(r.numpy())[:, column])
                        for s, r in self.rows.items()}

    def labels(self, split):
        return self._labels[split]

    def factor_classes(self, split, idx):
        rows = self.rows[split][idx].numpy()
        return torch.from_numpy(self.factors.all_factors_of(rows)[:, self.factors.latent])

    def _images(self, split, idx):
        return self.factors.images_at(self.rows[split][idx])

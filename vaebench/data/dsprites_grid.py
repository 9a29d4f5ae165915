"""The dSprites factor grid and the dataset class both dSprites variants share.

Grid (Matthey et al. 2017, dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz): shape 3 (square,
ellipse, heart) x scale 6 (0.5..1) x orientation 40 (0..2pi) x posX 32 x posY 32 (0..1) = 737,280
binary 64x64 images, row = ((((shape*6 + scale)*40 + orientation)*32 + posX)*32 + posY). The
archive's first factor, colour, has one value and is not a factor here.
"""

from __future__ import annotations

import numpy as np
import torch

from vaebench.data.base import ImageDataset

FACTOR_NAMES = ["shape", "scale", "orientation", "pos_x", "pos_y"]
FACTOR_SIZES = [3, 6, 40, 32, 32]
NUM_IMAGES = int(np.prod(FACTOR_SIZES))  # 737,280
SHAPES = ["square", "ellipse", "heart"]
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
_STRIDES = np.array([int(np.prod(FACTOR_SIZES[i + 1:])) for i in range(5)], dtype=np.int64)


def factors_to_index(factors: np.ndarray) -> np.ndarray:
    """(N, 5) factor classes -> (N,) grid rows."""
    return np.asarray(factors, dtype=np.int64) @ _STRIDES


def index_to_factors(index) -> np.ndarray:
    """(N,) grid rows -> (N, 5) factor classes."""
    index = np.asarray(index, dtype=np.int64)
    return (index[:, None] // _STRIDES) % np.array(FACTOR_SIZES)


class DSpritesFactors:
    """GroundTruthFactors over the full dSprites grid; `render(rows)` gives images of grid rows."""

    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES
    deterministic = True

    def __init__(self, render):
        self._render = render

    def sample_factors(self, num, random_state):
        return np.stack([random_state.randint(n, size=num) for n in FACTOR_SIZES], axis=1)

    def index_of(self, factors):
        return factors_to_index(factors)

    def images_at(self, indices):
        return self._render(torch.as_tensor(np.asarray(indices), dtype=torch.long))

    def sample_observations_from_factors(self, factors, random_state):
        return self.images_at(self.index_of(factors))


def split_indices(test_size: int, train_size: int | None, seed: int = 0):
    """A fixed, seeded held-out test set; train = the other rows (or a seeded subset of them)."""
    perm = torch.randperm(NUM_IMAGES, generator=torch.Generator().manual_seed(seed))
    test, train = perm[:test_size].sort().values, perm[test_size:]
    if train_size is not None:
        train = train[:train_size]
    return train.sort().values, test


class DSpritesDataset(ImageDataset):
    """Both dSprites datasets: a grid-row renderer + the split. Labels (for cvae) = shape."""

    image_shape = (1, 64, 64)
    num_classes = 3
    class_name = "shape"

    def __init__(self, name, render, test_size=10_000, train_size=None):
        self.name = name
        self._render = render
        self.rows = dict(zip(("train", "test"), split_indices(test_size, train_size)))
        self._labels = {s: r // int(_STRIDES[0]) for s, r in self.rows.items()}
        self.factors = DSpritesFactors(render)

    def labels(self, split):
        return self._labels[split]

    def factor_classes(self, split, idx):
        return torch.from_numpy(index_to_factors(self.rows[split][idx].numpy()))

    def _images(self, split, idx):
        return self._render(self.rows[split][idx])

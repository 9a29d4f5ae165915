"""What every dataset gives the trainer and the metrics.

An `ImageDataset` holds its splits in memory and hands out batches by index tensor, so the
training loop never calls a per-item Python `__getitem__`. Datasets with known generative factors
(dSprites) also carry a `GroundTruthFactors` object for the disentanglement metrics.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

SPLITS = ("train", "test")


class GroundTruthFactors(Protocol):
    """disentanglement_lib's `GroundTruthData` interface, over a finite factor grid.

    factor_names: one name per factor, e.g. ["shape", "scale", "orientation", "pos_x", "pos_y"].
    factor_sizes: number of values of each factor, e.g. [3, 6, 40, 32, 32].
    """

    factor_names: list[str]
    factor_sizes: list[int]
    # True when an observation is a fixed function of its factors (dSprites, Shapes3D); False
    # when it is random given them (colour/noisy/scream dSprites, smallNORB's random instance),
    # so codes cannot be looked up per grid row. index_of/images_at need it True.
    deterministic: bool

    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        """(num, K) int64 factor class indices, each uniform over its range."""

    def index_of(self, factors: np.ndarray) -> np.ndarray:
        """(num,) int64 row of each factor combination in the full grid (row-major order)."""

    def images_at(self, indices: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(num, C, H, W) float32 images in [0, 1] at the given grid rows."""

    def sample_observations_from_factors(
        self, factors: np.ndarray, random_state: np.random.RandomState
    ) -> torch.Tensor:
        """(num, C, H, W) float32 images in [0, 1] showing the given factors."""


class ImageDataset:
    """In-memory image dataset with a train and a test split.

    Subclasses store images however suits them (uint8, packed bits) and implement `_images`.
    image_shape: (C, H, W). Pixels are in [0, 1]; the decoders model them as Bernoulli.
    num_classes: label classes a conditional model conditions on (digit, shape).
    """

    name: str = ""
    image_shape: tuple[int, int, int]
    num_classes: int
    class_name: str = "label"  # what the label is, for plots and docs
    factors: GroundTruthFactors | None = None
    # "dynamic": training images are grey levels, binarised afresh in every batch (x ~ Bernoulli
    # of the pixel), the IWAE paper's protocol; stored splits are already binary otherwise.
    binarize: str = "none"

    def __len__(self) -> int:
        return self.num_examples("train")

    def num_examples(self, split: str) -> int:
        return len(self.labels(split))

    def labels(self, split: str) -> torch.Tensor:
        """(N,) int64 class labels of the split."""
        raise NotImplementedError

    def _images(self, split: str, idx: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float32 in [0, 1] for the int64 indices `idx` of the split."""
        raise NotImplementedError

    def factor_classes(self, split: str, idx: torch.Tensor) -> torch.Tensor:
        """(B, K) int64 classes of `factors.factor_names` of the examples `idx` of the split
        (datasets with ground-truth factors implement it)."""
        raise NotImplementedError(f"dataset {self.name!r} has no ground-truth factors")

    def batch(self, split: str, idx: torch.Tensor, device: torch.device | str = "cpu",
              generator: torch.Generator | None = None):
        """Images (B, C, H, W) float32 in [0, 1] and labels (B,) int64 for `idx`, on `device`.
        `generator` (CPU) draws a dynamically binarised batch (the trainer passes its data
        generator, so a resumed run sees the same pixels); without one the global RNG does."""
        idx = idx.cpu()
        x = self._images(split, idx)
        if self.binarize == "dynamic" and split == "train":
            x = torch.bernoulli(x, generator=generator)
        x = x.to(device, non_blocking=True)
        y = self.labels(split)[idx].to(device, non_blocking=True)
        return x, y

    def iter_batches(self, split: str, batch_size: int, device="cpu", limit: int | None = None):
        """All (or the first `limit`) examples of a split in order, as (x, y) batches."""
        n = self.num_examples(split) if limit is None else min(limit, self.num_examples(split))
        for start in range(0, n, batch_size):
            yield self.batch(split, torch.arange(start, min(start + batch_size, n)), device)


class TensorImageDataset(ImageDataset):
    """Images kept as uint8 tensors (N, C, H, W) with values 0..255; used for MNIST and tests."""

    def __init__(self, name, train_images, train_labels, test_images, test_labels, num_classes,
                 class_name="label", binarize: str = "none"):
        self.name = name
        self.binarize = binarize
        self._x = {"train": train_images, "test": test_images}
        self._y = {"train": train_labels.long(), "test": test_labels.long()}
        self.image_shape = tuple(train_images.shape[1:])
        self.num_classes = num_classes
        self.class_name = class_name

    def labels(self, split):
        return self._y[split]

    def _images(self, split, idx):
        return self._x[split][idx].float().div_(255.0)

"""MNIST through torchvision (LeCun et al. 1998), kept in memory as uint8 (N, 1, 28, 28)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets

from vaebench.data.base import TensorImageDataset
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

RAW_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _load_split(data_root: Path, train: bool):
    try:
        return datasets.MNIST(root=str(data_root), train=train, download=False)
    except RuntimeError:
        pass  # files absent: try to download them
    try:
        return datasets.MNIST(root=str(data_root), train=train, download=True)
    except Exception as e:  # no network, or a mirror refused: tell the user where files go
        raw = Path(data_root).resolve() / "MNIST" / "raw"
        raise VaebenchError(
            f"MNIST is not in {raw} and could not be downloaded ({type(e).__name__}: {e}). "
            f"Put the four files {', '.join(RAW_FILES)} (or their .gz) in {raw}, or point "
            f"--data-root / VAEBENCH_DATA at a folder that has MNIST/raw/ (torchvision's layout)."
        ) from None


def _subset(images, labels, size, seed=0):
    if size is None or size >= len(labels):
        return images, labels
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
    return images[idx], labels[idx]


@register_dataset("mnist", description="MNIST digits, 28x28 grey, 60k train / 10k test "
                  "(torchvision; labels = digit)")
def mnist(data_root: Path, train_size: int | None = None) -> TensorImageDataset:
    """train_size: keep a seeded random subset of the training split (quick suites, tests)."""
    train, test = _load_split(data_root, True), _load_split(data_root, False)
    x_train, y_train = _subset(train.data.unsqueeze(1), train.targets, train_size)
    return TensorImageDataset("mnist", x_train, y_train, test.data.unsqueeze(1), test.targets,
                              num_classes=10, class_name="digit")

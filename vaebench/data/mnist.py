"""MNIST through torchvision (LeCun et al. 1998), kept in memory as uint8 (N, 1, 28, 28)."""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import PositiveInt
import torch
from torchvision import datasets

from vaebench.data.base import TensorImageDataset
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

RAW_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def check_idx_file(path: Path) -> None:
    """An IDX file (LeCun's format) is exactly its header plus the product of its dimensions."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(4)
        ndim = header[3] if len(header) == 4 else 0
        dims = f.read(4 * ndim)
    if len(header) < 4 or header[:2] != b"\0\0" or len(dims) < 4 * ndim or ndim == 0:
        raise VaebenchError(f"{path} is not an MNIST (IDX) file ({size} bytes); download it again")
    expected = 4 + 4 * ndim + math.prod(int.from_bytes(dims[i:i + 4], "big")
                                        for i in range(0, 4 * ndim, 4))
    if size != expected:
        what = "truncated" if size < expected else "longer than its header says"
        raise VaebenchError(f"{path} is {what}: {size:,} bytes, its header says {expected:,}; "
                            f"download it again (or delete it to let torchvision fetch it)")


def _load_split(data_root: Path, train: bool):
    raw = Path(data_root) / "MNIST" / "raw"
    for name in RAW_FILES:
        if (raw / name).is_file():
            check_idx_file(raw / name)
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
def mnist(data_root: Path, train_size: PositiveInt | None = None) -> TensorImageDataset:
    """train_size: keep a seeded random subset of the training split (quick suites, tests)."""
    train, test = _load_split(data_root, True), _load_split(data_root, False)
    x_train, y_train = _subset(train.data.unsqueeze(1), train.targets, train_size)
    return TensorImageDataset("mnist", x_train, y_train, test.data.unsqueeze(1), test.targets,
                              num_classes=10, class_name="digit")

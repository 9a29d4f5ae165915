"""MNIST through torchvision (LeCun et al. 1998), kept in memory as uint8 (N, 1, 28, 28).

A Bernoulli decoder is a likelihood for binary pixels: on grey levels its ELBO bounds no
log-likelihood (and has a floor of about 45.5 nats per test image). So MNIST is binarised by
default, as in the papers that report MNIST likelihoods:
- "dynamic" (default): every training batch is binarised afresh, x ~ Bernoulli(grey level)
  (Burda et al. 2016, the IWAE paper's protocol);
- "static": the training split is binarised once with a fixed seed;
- "none": grey levels, for a decoder that models them (refused with a Bernoulli decoder).
The test split is binarised once with a fixed seed (the same for every run), except with "none".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

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


BINARIZE_SEED = {"train": 1, "test": 2}  # fixed: every run sees the same static binarisation


def binarized(images: torch.Tensor, seed: int) -> torch.Tensor:
    """uint8 grey images -> uint8 {0, 255}, each pixel ~ Bernoulli(grey / 255), seeded."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.bernoulli(images.float() / 255.0, generator=gen) * 255).to(torch.uint8)


def _subset(images, labels, size, seed=0):
    if size is None or size >= len(labels):
        return images, labels
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:size]
    return images[idx], labels[idx]


@register_dataset("mnist", description="MNIST digits, 28x28 grey, 60k train / 10k test "
                  "(torchvision; labels = digit)")
def mnist(data_root: Path, train_size: PositiveInt | None = None,
          binarize: Literal["dynamic", "static", "none"] = "dynamic") -> TensorImageDataset:
    """train_size: keep a seeded random subset of the training split (quick suites, tests).
    binarize: dynamic / static / none (see the module docstring)."""
    train, test = _load_split(data_root, True), _load_split(data_root, False)
    x_train, y_train = _subset(train.data.unsqueeze(1), train.targets, train_size)
    x_test = test.data.unsqueeze(1)
    if binarize != "none":
        x_test = binarized(x_test, BINARIZE_SEED["test"])
    if binarize == "static":
        x_train = binarized(x_train, BINARIZE_SEED["train"])
    return TensorImageDataset("mnist", x_train, y_train, x_test, test.targets, num_classes=10,
                              class_name="digit", binarize="dynamic" if binarize == "dynamic" else "none")

"""CIFAR-10 (Krizhevsky 2009) through torchvision, kept in memory as uint8 (N, 3, 32, 32).

image_size 64 upsamples (bilinear, antialiased) for the 64x64 encoder/decoder, which has no
32x32 layout yet; bits per dimension are then per 64x64x3 dimension, not comparable with the
literature's 32x32 figures.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision import datasets

from vaebench.data.base import TensorImageDataset
from vaebench.data.files import torchvision_split
from vaebench.data.mnist import _subset
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset


def _images(split, image_size: int) -> torch.Tensor:
    x = torch.from_numpy(split.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32) uint8
    if image_size == 32:
        return x
    out = torch.empty(len(x), 3, image_size, image_size, dtype=torch.uint8)
    for start in range(0, len(x), 2048):
        up = F.interpolate(x[start:start + 2048].float(), size=(image_size, image_size),
                           mode="bilinear", align_corners=False, antialias=True)
        out[start:start + 2048] = up.round().clamp(0, 255).to(torch.uint8)
    return out


@register_dataset("cifar10", description="CIFAR-10, 32x32 RGB (image_size 64: upsampled), 50k "
                  "train / 10k test (torchvision; labels = class)")
def cifar10(data_root: Path, train_size: int | None = None, image_size: int = 32) -> TensorImageDataset:
    """train_size: seeded subset of the training split; image_size: 32 (native) or 64."""
    if image_size not in (32, 64):
        raise VaebenchError(f"dataset cifar10: image_size must be 32 or 64; got {image_size}")
    folder = Path(data_root).resolve() / "cifar-10-batches-py"
    source = ("It is the python version of CIFAR-10, https://www.cs.toronto.edu/~kriz/"
              "cifar-10-python.tar.gz, extracted (torchvision's layout <root>/cifar-10-batches-py/).")
    train, test = (torchvision_split(datasets.CIFAR10, data_root, t, "CIFAR-10", folder, source)
                   for t in (True, False))
    x_train, y_train = _subset(_images(train, image_size), torch.tensor(train.targets), train_size)
    return TensorImageDataset("cifar10", x_train, y_train, _images(test, image_size),
                              torch.tensor(test.targets), num_classes=10, class_name="class")

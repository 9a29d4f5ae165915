"""Fashion-MNIST (Xiao et al. 2017) through torchvision, kept in memory as uint8 (N, 1, 28, 28)."""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets

from vaebench.data.base import TensorImageDataset
from vaebench.data.files import torchvision_split
from vaebench.data.mnist import RAW_FILES, _subset
from vaebench.registry import register_dataset

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle boot"]


@register_dataset("fashion_mnist", description="Fashion-MNIST, 28x28 grey clothing, 60k train / "
                  "10k test (torchvision; labels = article)")
def fashion_mnist(data_root: Path, train_size: int | None = None) -> TensorImageDataset:
    """train_size: keep a seeded random subset of the training split."""
    raw = Path(data_root).resolve() / "FashionMNIST" / "raw"
    source = (f"They are the four files {', '.join(RAW_FILES)} (or their .gz) of "
              f"https://github.com/zalandoresearch/fashion-mnist (MIT licence), in torchvision's "
              f"layout <root>/FashionMNIST/raw/.")
    train, test = (torchvision_split(datasets.FashionMNIST, data_root, t, "Fashion-MNIST", raw, source)
                   for t in (True, False))
    x_train, y_train = _subset(train.data.unsqueeze(1), train.targets, train_size)
    return TensorImageDataset("fashion_mnist", x_train, y_train, test.data.unsqueeze(1),
                              test.targets, num_classes=10, class_name="article")

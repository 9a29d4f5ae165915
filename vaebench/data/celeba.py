"""CelebA (Liu et al. 2015, "Deep Learning Face Attributes in the Wild"), aligned faces cropped
and resized to 64x64: the usual VAE preprocessing (centre crop 148x148 of the 178x218 aligned
image, then a bilinear, antialiased resize to 64x64, as torchvision's CenterCrop(148) + Resize(64)).

Files in torchvision's layout: <data root>/celeba/img_align_celeba/*.jpg and
<data root>/celeba/list_eval_partition.txt (0 train, 1 validation, 2 test; train = 162,770
images, test = 19,962). The licence is non-commercial research only and the files sit on Google
Drive, so vaebench does not download them. Decoding 200k JPEGs takes minutes, so the first load
writes the preprocessed split to <data root>/celeba/vaebench-crop148-64x64-<split>.npy (uint8,
2 GB for train) and later loads memory-map it; a read-only data root decodes into memory
instead. No labels (num_classes 1).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from vaebench.data.base import ImageDataset
from vaebench.data.files import missing
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

CROP, SIZE = 148, 64
PARTITION = {"train": 0, "test": 2}
SOURCE = ("It is the aligned-and-cropped CelebA of https://mmlab.ie.cuhk.edu.hk/projects/"
          "CelebA.html (img_align_celeba.zip, extracted, and list_eval_partition.txt; "
          "non-commercial research licence), in torchvision's layout <root>/celeba/.")


def preprocess(path: Path) -> np.ndarray:
    """One aligned face -> (3, 64, 64) uint8."""
    try:
        with Image.open(path) as img:
            img = TF.center_crop(img.convert("RGB"), [CROP, CROP])
            img = TF.resize(img, [SIZE, SIZE], interpolation=InterpolationMode.BILINEAR, antialias=True)
            return np.asarray(img).transpose(2, 0, 1)
    except OSError as e:
        raise VaebenchError(f"{path}: not a readable image ({e}); extract img_align_celeba.zip "
                            f"again") from None


def split_files(folder: Path) -> dict[str, list[str]]:
    partition = folder / "list_eval_partition.txt"
    if not partition.is_file():
        raise missing("CelebA's list_eval_partition.txt", partition, SOURCE)
    files = {s: [] for s in PARTITION}
    for line in partition.read_text().splitlines():
        if not line.strip():
            continue
        name, part = line.split()
        for split, p in PARTITION.items():
            if int(part) == p:
                files[split].append(name)
    return files


def load_split(folder: Path, split: str, names: list[str]) -> np.ndarray:
    """(N, 3, 64, 64) uint8: the cached .npy (memory-mapped), else decoded (and cached)."""
    cache = folder / f"vaebench-crop{CROP}-{SIZE}x{SIZE}-{split}.npy"
    shape = (len(names), 3, SIZE, SIZE)
    if cache.is_file():
        arr = np.load(cache, mmap_mode="r")
        if arr.shape == shape:
            return arr
    images = folder / "img_align_celeba"
    for name in (names[0], names[-1]) if names else ():
        if not (images / name).is_file():
            raise missing(f"The CelebA image {name}", images / name, SOURCE)
    tmp = cache.with_name(cache.name + f".{os.getpid()}.part")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    except OSError:  # read-only data root: decode into memory
        tmp, out = None, np.empty(shape, dtype=np.uint8)
    for i, name in enumerate(names):
        out[i] = preprocess(images / name)
    if tmp is None:
        return out
    out.flush()
    del out
    os.replace(tmp, cache)
    return np.load(cache, mmap_mode="r")


class CelebADataset(ImageDataset):
    name, image_shape, num_classes, class_name = "celeba", (3, SIZE, SIZE), 1, "none"

    def __init__(self, images: dict[str, np.ndarray], train_size: int | None = None):
        self._x = images
        self._rows = {s: torch.arange(len(x)) for s, x in images.items()}
        if train_size is not None and train_size < len(images["train"]):
            perm = torch.randperm(len(images["train"]), generator=torch.Generator().manual_seed(0))
            self._rows["train"] = perm[:train_size].sort().values
        self._labels = {s: torch.zeros(len(r), dtype=torch.long) for s, r in self._rows.items()}

    def labels(self, split):
        return self._labels[split]

    def _images(self, split, idx):
        rows = self._rows[split][idx].numpy()
        return torch.from_numpy(np.ascontiguousarray(self._x[split][rows])).float().div_(255.0)


@register_dataset("celeba", description="CelebA aligned faces, centre crop 148, 64x64 RGB, "
                  "162,770 train / 19,962 test (torchvision layout; no labels)")
def celeba(data_root: Path, train_size: int | None = None) -> CelebADataset:
    """train_size: seeded subset of the training split."""
    folder = Path(data_root) / "celeba"
    files = split_files(folder)
    return CelebADataset({s: load_split(folder, s, names) for s, names in files.items()}, train_size)

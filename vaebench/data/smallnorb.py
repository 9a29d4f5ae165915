"""smallNORB (LeCun et al. 2004, "Learning Methods for Generic Object Recognition with
Invariance to Pose and Lighting"), resized to 64x64 as disentanglement_lib's norb.py does.

<data root>/small_norb/smallnorb-5x46789x9x18x6x2x96x96-training-{dat,cat,info}.mat and
smallnorb-5x01235x9x18x6x2x96x96-testing-{dat,cat,info}.mat: the official files of
https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/ (gunzipped; the reference's paths). Binary
matrix format: int32 magic (0x1E3D4C55 uint8, 0x1E3D4C54 int32), int32 ndim, max(3, ndim)
int32 dims, then the data, little-endian. dat (24300, 2, 96, 96) uint8 (a stereo pair), cat
(24300,) category, info (24300, 4) instance, elevation, azimuth (0, 2, ..., 34), lighting.

As the reference: both files together (48,600 images), the first image of each stereo pair,
resized with PIL `resize((64, 64), LANCZOS)` (its ANTIALIAS), kept as uint8 (the reference
divides by 255 after); factors category 5, instance 10, elevation 9, azimuth 18 (= value / 2),
lighting 6, of which instance is not latent: the metrics see category, elevation, azimuth,
lighting and every observation draws its instance uniformly. (The reference reads the uint8
magic as int8; the format and these files are unsigned.) The licence of NORB asks for citation
and is not a redistribution grant, so vaebench does not download it. In memory: 200 MB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from vaebench.data.factor_grid import GridDataset, GridFactors, check_sizes
from vaebench.data.files import missing
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

FACTOR_NAMES = ["category", "instance", "elevation", "azimuth", "lighting"]
FACTOR_SIZES = [5, 10, 9, 18, 6]
LATENT = [0, 2, 3, 4]
CHUNKS = ["5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing"]
URL = "https://cs.nyu.edu/~ylclab/data/norb-v1.0-small/"
MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32}


def read_binary_matrix(path: Path) -> np.ndarray:
    """A NORB binary matrix, memory-mapped (read-only)."""
    try:
        header = np.fromfile(path, dtype="<i4", count=5)
    except OSError as e:
        raise VaebenchError(f"{path}: unreadable ({e})") from None
    if len(header) < 2 or int(header[0]) not in MAGIC:
        raise VaebenchError(f"{path}: not a NORB binary matrix (magic "
                            f"{hex(int(header[0])) if len(header) else 'missing'}); gunzip the "
                            f"official file from {URL} again")
    ndim = int(header[1])
    dims = tuple(int(d) for d in np.fromfile(path, dtype="<i4", count=max(3, ndim), offset=8)[:ndim])
    offset, dtype = 8 + 4 * max(3, ndim), np.dtype(MAGIC[int(header[0])]).newbyteorder("<")
    needed = offset + int(np.prod(dims)) * dtype.itemsize
    if path.stat().st_size != needed:
        raise VaebenchError(f"{path}: {path.stat().st_size} bytes, but its header says {dims} "
                            f"{dtype} ({needed} bytes): truncated; gunzip it from {URL} again")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=dims)


def resize(images: np.ndarray) -> np.ndarray:
    """(N, 96, 96) uint8 -> (N, 1, 64, 64) uint8 with the reference's PIL resize."""
    out = np.empty((len(images), 1, 64, 64), dtype=np.uint8)
    for i, image in enumerate(images):
        out[i, 0] = np.asarray(Image.fromarray(np.asarray(image)).resize((64, 64), Image.LANCZOS))
    return out


def load_smallnorb(folder: Path, factor_sizes: list[int] | None = None) -> GridFactors:
    official, factor_sizes = factor_sizes is None, factor_sizes or FACTOR_SIZES
    images, classes = [], []
    for chunk in CHUNKS:
        dat, cat, info = (read_binary_matrix(folder / f"smallnorb-{chunk}-{k}.mat")
                          for k in ("dat", "cat", "info"))
        n = len(dat)
        if dat.shape[1:] != (2, 96, 96) or cat.shape != (n,) or info.shape != (n, 4):
            raise VaebenchError(f"{folder}: {chunk} has dat {dat.shape}, cat {cat.shape}, info "
                                f"{info.shape}; expected (N, 2, 96, 96), (N,), (N, 4)")
        info = np.asarray(info, dtype=np.int64)
        classes.append(np.column_stack([cat, info[:, 0], info[:, 1], info[:, 2] // 2, info[:, 3]]))
        images.append(resize(dat[:, 0]))
    classes, images = np.concatenate(classes), np.concatenate(images)
    if official:
        check_sizes(folder, (classes.max(0) + 1).tolist(), FACTOR_SIZES, "the six files")
    grid = GridFactors(FACTOR_NAMES, factor_sizes, lambda rows: stored[rows], latent=LATENT)
    rows = grid.rows_of(classes)
    if len(rows) != grid.num_rows or not np.array_equal(np.sort(rows), np.arange(grid.num_rows)):
        raise VaebenchError(f"{folder}: the images do not cover the grid {factor_sizes} once "
                            f"each; the files are not the official ones")
    stored = np.empty_like(images)
    stored[rows] = images
    return grid


@register_dataset("smallnorb", description="smallNORB (LeCun et al. 2004) from "
                  "<data root>/small_norb/: 48,600 64x64 grey toys, 4 factors (+ instance)")
def smallnorb(data_root: Path, test_size: int = 4_860, train_size: int | None = None,
              factor_sizes: list[int] | None = None) -> GridDataset:
    """test_size (10% of the grid) / train_size: the seeded split (factor_grid.py) over all
    48,600 images (NORB's own train/test halves hold different instances, so they are not a
    split of this grid). factor_sizes: only for small files written by tests."""
    folder = Path(data_root) / "small_norb"
    for chunk in CHUNKS:
        for kind in ("dat", "cat", "info"):
            path = folder / f"smallnorb-{chunk}-{kind}.mat"
            if not path.is_file():
                raise missing(f"The smallNORB file {path.name}", path,
                              f"It is one of the six official smallNORB files of {URL} (gunzip "
                              f"{path.name}.gz; cite LeCun et al. 2004).")
    grid = load_smallnorb(folder, None if factor_sizes is None else list(factor_sizes))
    return GridDataset("smallnorb", grid, (1, 64, 64), "category", test_size, train_size)

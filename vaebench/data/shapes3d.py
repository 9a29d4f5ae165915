"""3D Shapes (Burgess & Kim 2018, "3D Shapes Dataset", DeepMind; used by Kim & Mnih 2018,
"Disentangling by Factorising"), read from the official HDF5 file without loading it.

<data root>/3dshapes/3dshapes.h5 (from https://storage.googleapis.com/3d-shapes/3dshapes.h5,
Apache 2.0): `images` (480000, 64, 64, 3) uint8 and `labels` (480000, 6) float64, rows in
row-major order of floor hue 10, wall hue 10, object hue 10, scale 8, shape 4, orientation 15 —
disentanglement_lib's shapes3d.py factor order and sizes ([10, 10, 10, 8, 4, 15], all latent,
pixels / 255). The reference reads an .npz conversion of the same arrays into memory (6 GB as
float32); here the rows of `images` a batch needs are read in place (pread, rowfile.py) when
the file stores it contiguously and uncompressed, else through h5py (sorted, each row once), so
RAM holds only the labels (23 MB) and the batches asked for. The loader checks that the labels are the grid in this order.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from vaebench.data.factor_grid import GridDataset, GridFactors, check_sizes
from vaebench.data.files import find_or_download
from vaebench.data.rowfile import RowReader
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

FILENAME = "3dshapes/3dshapes.h5"
URL = "https://storage.googleapis.com/3d-shapes/3dshapes.h5"
FACTOR_NAMES = ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
FACTOR_SIZES = [10, 10, 10, 8, 4, 15]
SOURCE = (f"It is DeepMind's 3dshapes.h5 (480,000 images; https://github.com/google-deepmind/"
          f"3d-shapes, Apache 2.0), downloadable from {URL}.")


class H5Rows:
    """Grid rows -> (B, 3, 64, 64) uint8 from the file's `images`: read in place (rowfile.py)
    when it is stored contiguously and uncompressed, else through h5py."""

    def __init__(self, path: Path, num_rows: int):
        self.path = path
        with h5py.File(path, "r") as f:
            ds = f["images"]
            offset = ds.id.get_offset() if ds.chunks is None and ds.compression is None else None
        if offset is not None:
            self._rows = RowReader(path, offset, (num_rows, 64, 64, 3), np.uint8)
        else:
            self._rows = None
            self._file = h5py.File(path, "r", rdcc_nbytes=64 << 20)  # 64 MB chunk cache
            self._images = self._file["images"]

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """rows: sorted, unique."""
        block = self._rows[rows] if self._rows is not None else self._images[rows]
        return block.transpose(0, 3, 1, 2)


def label_classes(path: Path, labels: np.ndarray, sizes) -> np.ndarray:
    """(N, 6) float labels -> (N, 6) class indices, checking each factor has `sizes[k]` values."""
    classes = np.empty(labels.shape, dtype=np.int64)
    for k in range(labels.shape[1]):
        values = np.unique(labels[:, k])
        if len(values) != sizes[k]:
            raise VaebenchError(f"{path}: labels column {k} ({FACTOR_NAMES[k]}) has {len(values)} "
                                f"distinct values; expected {sizes[k]}")
        classes[:, k] = np.searchsorted(values, labels[:, k])
    return classes


def open_shapes3d(path: Path, factor_sizes: list[int] | None = None) -> GridFactors:
    """Validate the file and return its factors over a lazy image reader. factor_sizes: None =
    the official grid (checked); a smaller grid only for test files."""
    official, factor_sizes = factor_sizes is None, factor_sizes or FACTOR_SIZES
    try:
        with h5py.File(path, "r") as f:
            if "images" not in f or "labels" not in f:
                raise VaebenchError(f"{path}: an HDF5 file without `images` and `labels` "
                                    f"(has {sorted(f)}); re-download {URL}")
            images, labels = f["images"], f["labels"]
            shape, dtype = images.shape, images.dtype
            label_values = labels[()]
    except OSError as e:  # truncated or not HDF5
        raise VaebenchError(f"{path}: not a readable HDF5 file ({e}); it is truncated or not "
                            f"the official file: re-download {URL}") from None
    n = int(np.prod(factor_sizes))
    if shape[1:] != (64, 64, 3) or dtype != np.uint8 or label_values.shape != (shape[0], 6):
        raise VaebenchError(f"{path}: images {shape} {dtype}, labels {label_values.shape}; "
                            f"expected images (N, 64, 64, 3) uint8 and labels (N, 6)")
    if official:
        check_sizes(path, [len(np.unique(label_values[:, k])) for k in range(6)], FACTOR_SIZES,
                    "labels")
    if shape[0] != n:
        raise VaebenchError(f"{path}: {shape[0]} images; the grid {list(factor_sizes)} has {n}. "
                            f"The file is truncated or not the official one: re-download {URL}")
    grid = GridFactors(FACTOR_NAMES, factor_sizes, H5Rows(path, n))
    if not np.array_equal(grid.rows_of(label_classes(path, label_values, factor_sizes)),
                          np.arange(n)):
        raise VaebenchError(f"{path}: rows are not in the 3D Shapes grid order "
                            f"({' x '.join(FACTOR_NAMES)}, last fastest)")
    return grid


@register_dataset("shapes3d", description="3D Shapes (Burgess & Kim 2018) from "
                  "<data root>/3dshapes/3dshapes.h5: 480,000 64x64 RGB images, 6 factors")
def shapes3d(data_root: Path, test_size: int = 10_000, train_size: int | None = None,
             factor_sizes: list[int] | None = None) -> GridDataset:
    """test_size / train_size: the seeded split (factor_grid.py). factor_sizes: only for small
    files in the official format written by tests; None requires the official grid."""
    path = find_or_download(data_root, FILENAME, "The 3D Shapes file 3dshapes.h5", SOURCE, URL)
    grid = open_shapes3d(path, None if factor_sizes is None else list(factor_sizes))
    return GridDataset("shapes3d", grid, (3, 64, 64), "shape", test_size, train_size)

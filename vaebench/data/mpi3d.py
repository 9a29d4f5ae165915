"""MPI3D (Gondal et al. 2019, "On the Transfer of Inductive Bias from Simulation to the Real
World: a New Disentanglement Dataset"): toy, realistic and real, read in place from the .npz.

<data root>/mpi3d_<variant>/mpi3d_<variant>.npz (disentanglement_lib's paths), each with one
array `images` (1036800, 64, 64, 3) uint8 in row-major order of object colour 6, object shape 6,
object size 2, camera height 3, background colour 3, horizontal axis 40, vertical axis 40
(https://github.com/rr-learning/disentanglement_dataset, CC BY 4.0). disentanglement_lib's
mpi3d.py uses this order, all 7 factors latent, pixels / 255; its toy and realistic grids are
4 x 4 colours x shapes because it reads the "without held-out factors" copies (460,800 images,
e.g. sim_toy_64x_ordered_without_heldout_factors.npz): a file of that size is read with that
grid. The archive stores the array uncompressed, so a batch reads its rows in place (rowfile.py);
the 12.7 GB are never loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaebench.data.factor_grid import GridDataset, GridFactors
from vaebench.data.files import find_or_download
from vaebench.data.rowfile import npz_member
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

FACTOR_NAMES = ["object_color", "object_shape", "object_size", "camera_height",
                "background_color", "horizontal_axis", "vertical_axis"]
FACTOR_SIZES = [6, 6, 2, 3, 3, 40, 40]  # the official files: 1,036,800 images
WITHOUT_HELDOUT_SIZES = [4, 4, 2, 3, 3, 40, 40]  # disentanglement_lib's toy/realistic copies
BASE_URL = "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset"


def open_mpi3d(path: Path, factor_sizes: list[int] | None = None) -> GridFactors:
    """Validate and memory-map the archive. factor_sizes: None = the official grid (or the
    reference's 460,800-image grid, told apart by the row count); else only for test files."""
    images = npz_member(path, "images")
    if images.ndim != 4 or images.shape[1:] != (64, 64, 3) or images.dtype != np.uint8:
        raise VaebenchError(f"{path}: images has shape {images.shape}, dtype {images.dtype}; "
                            f"expected (N, 64, 64, 3) uint8")
    if factor_sizes is None:
        grids = {int(np.prod(s)): s for s in (FACTOR_SIZES, WITHOUT_HELDOUT_SIZES)}
        if images.shape[0] not in grids:
            raise VaebenchError(f"{path}: {images.shape[0]} images; the official MPI3D files have "
                                f"{int(np.prod(FACTOR_SIZES))} (6x6x2x3x3x40x40). The file is "
                                f"truncated or not the official one: download it again")
        factor_sizes = grids[images.shape[0]]
    elif images.shape[0] != int(np.prod(factor_sizes)):
        raise VaebenchError(f"{path}: {images.shape[0]} images for the grid {factor_sizes}")
    return GridFactors(FACTOR_NAMES, factor_sizes,
                       lambda rows: images[rows].transpose(0, 3, 1, 2))


def _mpi3d(variant: str, data_root: Path, test_size: int, train_size: int | None,
           factor_sizes: list[int] | None) -> GridDataset:
    name = f"mpi3d_{variant}"
    url = f"{BASE_URL}/{name}.npz"
    source = (f"It is the MPI3D-{variant} archive of the NeurIPS 2019 disentanglement challenge "
              f"(https://github.com/rr-learning/disentanglement_dataset, CC BY 4.0), "
              f"downloadable from {url} (12.7 GB).")
    path = find_or_download(data_root, f"{name}/{name}.npz", f"The MPI3D file {name}.npz",
                            source, url)
    grid = open_mpi3d(path, None if factor_sizes is None else list(factor_sizes))
    return GridDataset(name, grid, (3, 64, 64), "object_shape", test_size, train_size)


def _register(variant: str, what: str):
    @register_dataset(f"mpi3d_{variant}", description=f"MPI3D-{variant} (Gondal et al. 2019), "
                      f"{what}, from <data root>/mpi3d_{variant}/: 1,036,800 64x64 RGB, 7 factors")
    def load(data_root: Path, test_size: int = 10_000, train_size: int | None = None,
             factor_sizes: list[int] | None = None) -> GridDataset:
        """test_size / train_size: the seeded split (factor_grid.py). factor_sizes: only for
        small files in the official format written by tests."""
        return _mpi3d(variant, data_root, test_size, train_size, factor_sizes)

    return load


mpi3d_toy = _register("toy", "simple renders")
mpi3d_realistic = _register("realistic", "realistic renders")
mpi3d_real = _register("real", "camera images")

"""Cars3D (Reed et al. 2015, "Deep Visual Analogy-Making"): 183 car models x 4 elevations x 24
azimuths, rendered at 128x128 and resized to 64x64 as disentanglement_lib's cars3d.py does.

<data root>/cars/*.mat: the `cars` folder of http://www.scottreed.info/files/
nips2015-analogy-data.tar.gz (the reference's path; the archive has no stated licence, so
vaebench does not download it). Each file holds `im` (128, 128, 3, 24, 4) uint8: height, width,
RGB, azimuth, elevation. Factors as in the reference: elevation 4, azimuth 24, object type 183,
all latent, row = (elevation * 24 + azimuth) * 183 + object. Object type = the file's position
in the sorted file names (the reference takes the directory listing order, which the file
system decides). Resize: PIL `thumbnail((64, 64), LANCZOS)`, the reference's call (its size
(64, 64, 3) is refused by current Pillow; ANTIALIAS is
LANCZOS), kept as uint8, which is what the reference's float array holds before / 255.
The 17,568 resized images are kept in memory (216 MB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from vaebench.data.factor_grid import GridDataset, GridFactors, check_sizes
from vaebench.data.files import missing
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

FACTOR_NAMES = ["elevation", "azimuth", "object"]
FACTOR_SIZES = [4, 24, 183]
URL = "http://www.scottreed.info/files/nips2015-analogy-data.tar.gz"
SOURCE = (f"It is the `cars` folder (183 files car_*_mesh.mat) of Reed et al.'s {URL} "
          f"(http://www.scottreed.info); extract the archive and move data/cars there.")


def resize_views(im: np.ndarray) -> np.ndarray:
    """`im` (128, 128, 3, 24, 4) -> (24 * 4, 3, 64, 64) uint8, view row = azimuth * 4 + elevation
    (the reference's einsum("abcde->deabc") then reshape)."""
    views = np.einsum("abcde->deabc", im).reshape((-1,) + im.shape[:3])
    out = np.empty((len(views), 3, 64, 64), dtype=np.uint8)
    for i, view in enumerate(views):
        pic = Image.fromarray(view)
        pic.thumbnail((64, 64), Image.LANCZOS)
        out[i] = np.asarray(pic).transpose(2, 0, 1)
    return out


def load_cars(folder: Path, factor_sizes: list[int] | None = None) -> GridFactors:
    files = sorted(folder.glob("*.mat"))
    official, factor_sizes = factor_sizes is None, factor_sizes or FACTOR_SIZES
    if official:
        check_sizes(folder, [4, 24, len(files)], FACTOR_SIZES, "the folder of .mat files")
    elif len(files) != factor_sizes[2]:
        raise VaebenchError(f"{folder}: {len(files)} .mat files for the grid {factor_sizes}")
    grid = np.empty((int(np.prod(factor_sizes)), 3, 64, 64), dtype=np.uint8)
    elevation, azimuth = np.tile(np.arange(4), 24), np.repeat(np.arange(24), 4)
    for obj, path in enumerate(files):
        try:
            im = scipy.io.loadmat(path)["im"]
        except Exception as e:
            raise VaebenchError(f"{path}: not a readable Cars3D .mat file ({type(e).__name__}: "
                                f"{e}); extract {URL} again") from None
        if im.shape != (128, 128, 3, 24, 4) or im.dtype != np.uint8:
            raise VaebenchError(f"{path}: `im` has shape {im.shape}, dtype {im.dtype}; expected "
                                f"(128, 128, 3, 24, 4) uint8")
        rows = (elevation * 24 + azimuth) * factor_sizes[2] + obj
        grid[rows] = resize_views(im)
    return GridFactors(FACTOR_NAMES, factor_sizes, lambda rows: grid[rows])


@register_dataset("cars3d", description="Cars3D (Reed et al. 2015) from <data root>/cars/: "
                  "17,568 64x64 RGB renders, factors elevation, azimuth, object")
def cars3d(data_root: Path, test_size: int = 1_757, train_size: int | None = None,
           factor_sizes: list[int] | None = None) -> GridDataset:
    """test_size (10% of the grid) / train_size: the seeded split (factor_grid.py).
    factor_sizes: only for small folders in the official format written by tests."""
    folder = Path(data_root) / "cars"
    if not folder.is_dir() or not any(folder.glob("*.mat")):
        raise missing("The Cars3D folder of .mat files", folder, SOURCE)
    grid = load_cars(folder, None if factor_sizes is None else list(factor_sizes))
    return GridDataset("cars3d", grid, (3, 64, 64), "object", test_size, train_size)

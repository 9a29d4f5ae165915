"""The real dSprites archive (Matthey et al. 2017), read from the data root.

Images are kept as packed bits (737,280 x 64 x 8 bytes = 360 MiB) and unpacked per batch.
"""

from __future__ import annotations

import urllib.request
import zipfile
from pathlib import Path

from pydantic import PositiveInt
import numpy as np
import torch

from vaebench.data.dsprites_grid import NUM_IMAGES, DSpritesDataset
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = f"https://github.com/google-deepmind/dsprites-dataset/raw/master/{FILENAME}"
# Real archive: latents_classes columns = colour (1 value), shape, scale, orientation, posX, posY.
_EXPECTED_CLASSES = np.array([1, 3, 6, 40, 32, 32])


def find_or_download(data_root: Path) -> Path:
    for candidate in (Path(data_root) / "dsprites" / FILENAME, Path(data_root) / FILENAME):
        if candidate.is_file():
            return candidate
    target = Path(data_root) / "dsprites" / FILENAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        with urllib.request.urlopen(URL, timeout=10) as r, open(tmp, "wb") as f:
            f.write(r.read())
        tmp.replace(target)
        return target
    except Exception as e:
        raise VaebenchError(
            f"the dSprites archive is missing: {target.resolve()} does not exist and it could not be "
            f"downloaded ({type(e).__name__}: {e}). Download {FILENAME} from {URL} and put it at "
            f"{target.resolve()} (or point --data-root / VAEBENCH_DATA elsewhere). For an offline "
            f"run use the dataset `dsprites_procedural` instead."
        ) from None


def _read_imgs_packed(path: Path, chunk: int = 32768) -> torch.Tensor:
    """Stream `imgs` out of the archive chunk by chunk into packed bits (never 3 GB at once)."""
    with zipfile.ZipFile(path) as zf, zf.open("imgs.npy") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if shape != (NUM_IMAGES, 64, 64) or dtype != np.uint8 or fortran:
            raise VaebenchError(f"{path}: imgs has shape {shape}, dtype {dtype}; expected "
                                f"({NUM_IMAGES}, 64, 64) uint8")
        packed = np.empty((NUM_IMAGES, 64, 8), dtype=np.uint8)
        for start in range(0, NUM_IMAGES, chunk):
            n = min(chunk, NUM_IMAGES - start)
            block = np.frombuffer(f.read(n * 4096), dtype=np.uint8).reshape(n, 64, 64)
            if block.max(initial=0) > 1:
                raise VaebenchError(f"{path}: imgs must be binary (0/1); found values up to {block.max()}")
            packed[start:start + n] = np.packbits(block, axis=-1)
    return torch.from_numpy(packed)


def load_packed_images(path: Path) -> torch.Tensor:
    """Validate the archive and return its images as packed bits (737280, 64, 8) uint8."""
    try:
        archive = np.load(path, allow_pickle=False)
        keys = set(archive.files)
    except Exception as e:
        raise VaebenchError(f"{path}: not a readable .npz archive ({e}); re-download {URL}") from None
    missing = {"imgs", "latents_classes"} - keys
    if missing:
        raise VaebenchError(f"{path}: missing array(s) {sorted(missing)}; a dSprites archive has "
                            f"imgs, latents_values, latents_classes")
    classes = archive["latents_classes"]
    if classes.shape != (NUM_IMAGES, 6) or not np.array_equal(classes.max(0) + 1, _EXPECTED_CLASSES):
        raise VaebenchError(f"{path}: latents_classes has shape {classes.shape}; expected "
                            f"({NUM_IMAGES}, 6) covering the dSprites grid 1x3x6x40x32x32")
    order = classes[:, 1:] @ np.array([6 * 40 * 32 * 32, 40 * 32 * 32, 32 * 32, 32, 1])
    if not np.array_equal(order, np.arange(NUM_IMAGES)):
        raise VaebenchError(f"{path}: rows are not in the dSprites grid order")
    return _read_imgs_packed(path)


class PackedRenderer:
    """Grid rows -> (B, 1, 64, 64) float images, unpacking the stored bits."""

    def __init__(self, packed: torch.Tensor):
        self.packed = packed
        self._shifts = torch.arange(7, -1, -1, dtype=torch.uint8)

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        bits = (self.packed[rows].unsqueeze(-1) >> self._shifts) & 1  # (B, 64, 8, 8)
        return bits.reshape(len(rows), 1, 64, 64).float()


@register_dataset("dsprites", description="the real dSprites archive (Matthey et al. 2017) from "
                  "<data root>/dsprites/; 737,280 64x64 binary images with factors")
def dsprites(data_root: Path, test_size: PositiveInt = 10_000, train_size: PositiveInt | None = None) -> DSpritesDataset:
    packed = load_packed_images(find_or_download(data_root))
    return DSpritesDataset("dsprites", PackedRenderer(packed), test_size, train_size)

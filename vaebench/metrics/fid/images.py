"""Image folders for `vaebench fid`: every image file in a folder (not its subfolders), as a tensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_fid.fid_score import IMAGE_EXTENSIONS

from vaebench.errors import VaebenchError


def image_files(folder: Path) -> list[Path]:
    """The image files pytorch-fid's CLI would read from `folder`, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VaebenchError(f"{folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTENSIONS)
    if len(files) < 2:
        raise VaebenchError(f"{folder} has {len(files)} image file(s) "
                            f"({', '.join(sorted(IMAGE_EXTENSIONS))}); FID needs at least 2")
    return files


def load_image_folder(folder: Path, channels: int, size: tuple[int, int] | None = None) -> torch.Tensor:
    """(N, channels, H, W) float32 in [0, 1]: channels 1 reads files as grey ("L"), 3 as RGB (as
    pytorch-fid does). size (H, W): resize (bilinear, antialiased) to it; None: every file must
    have the same size."""
    mode = {1: "L", 3: "RGB"}[channels]
    images = []
    for path in image_files(folder):
        try:
            with Image.open(path) as im:
                x = torch.from_numpy(np.array(im.convert(mode), dtype=np.uint8)).float().div(255)
        except (OSError, ValueError, SyntaxError) as e:  # PIL's errors for damaged files
            raise VaebenchError(f"{path} is damaged or not an image ({type(e).__name__}: {e}); "
                                f"replace or remove it") from None
        x = x[None] if x.ndim == 2 else x.permute(2, 0, 1)
        if size is not None and tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        if images and x.shape != images[0].shape:
            raise VaebenchError(f"{path} is {tuple(x.shape[-2:])} pixels but {folder}'s first image "
                                f"is {tuple(images[0].shape[-2:])}; give images of one size")
        images.append(x)
    return torch.stack(images)

"""dSprites rendered by vaebench itself: the offline default dataset.

Same factor grid and row order as the real archive (see dsprites_grid.py). Rather than holding
737,280 images, it renders the 720 (shape, scale, orientation) sprites once (4x4 supersampled,
then thresholded to binary), and a batch of grid rows is cut out of that sprite bank by index:
position (posX, posY) moves the sprite centre in whole pixels over [16, 47]. The bank is
720 x 96 x 96 bytes (6.6 MB), ready in about a second, and every image of the grid is
available, identical on every machine.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import PositiveInt
import numpy as np
import torch

from vaebench.data.dsprites_grid import ORIENTATIONS, SCALES, SHAPES, DSpritesDataset
from vaebench.registry import register_dataset

BANK = 96  # bank canvas side; the sprite centre sits at (BANK/2, BANK/2)
SPAN = 16  # sprite half-extent rendered (pixels); a rotated square at scale 1 needs ~13
HALF_SIZE = 9.0  # half-size of a shape at scale 1, in pixels
SUPERSAMPLE = 4


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """u, v: coordinates in units of the shape's half-size, v pointing up."""
    if shape == "square":
        return (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if shape == "ellipse":
        return (u / 1.1) ** 2 + (v / 0.55) ** 2 <= 1
    # heart: (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0, shifted so it is centred
    x, y = u * 1.2, v * 1.2 + 0.15
    return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 <= 0


def render_sprite_bank() -> torch.Tensor:
    """(720, BANK, BANK) uint8 {0, 1}: sprite (shape, scale, orientation) centred in the canvas."""
    offsets = (np.arange(2 * SPAN * SUPERSAMPLE) + 0.5) / SUPERSAMPLE - SPAN
    px, py = np.meshgrid(offsets, offsets)  # px: right, py: down, in pixels from the centre
    bank = np.zeros((len(SHAPES) * len(SCALES) * len(ORIENTATIONS), BANK, BANK), dtype=np.uint8)
    i = 0
    for shape in SHAPES:
        for scale in SCALES:
            for theta in ORIENTATIONS:
                c, s = np.cos(theta), np.sin(theta)
                # rotate the sampling grid by -theta (counter-clockwise shape rotation)
                u = (c * px - s * py) / (HALF_SIZE * scale)
                v = -(s * px + c * py) / (HALF_SIZE * scale)
                cover = _inside(shape, u, v).reshape(2 * SPAN, SUPERSAMPLE, 2 * SPAN, SUPERSAMPLE)
                sprite = cover.mean(axis=(1, 3)) >= 0.5
                lo = BANK // 2 - SPAN
                bank[i, lo:lo + 2 * SPAN, lo:lo + 2 * SPAN] = sprite
                i += 1
    return torch.from_numpy(bank)


class SpriteRenderer:
    """Grid rows -> (B, 1, 64, 64) float images by cutting windows out of the sprite bank."""

    def __init__(self):
        self.bank = render_sprite_bank().flatten()
        ar = torch.arange(64)
        self._window = (ar[:, None] * BANK + ar[None, :]).flatten()  # (4096,) offsets of a 64x64 cut

    def __call__(self, rows: torch.Tensor) -> torch.Tensor:
        return self.uint8(rows).float()

    def uint8(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, 1, 64, 64) uint8 {0, 1}."""
        rows = rows.long()
        pos_y, rest = rows % 32, rows // 32
        pos_x, rest = rest % 32, rest // 32
        sprite = rest  # (shape * 6 + scale) * 40 + orientation
        # centre = 16 + pos pixels, so the window's top-left in bank coordinates is 48 - centre
        top, left = BANK // 2 - 16 - pos_y, BANK // 2 - 16 - pos_x
        start = sprite * BANK * BANK + top * BANK + left
        img = self.bank[start[:, None] + self._window]  # one gather: (B, 4096)
        return img.view(-1, 1, 64, 64)


@register_dataset("dsprites_procedural", description="dSprites rendered by vaebench (offline "
                  "default): 737,280 64x64 binary images, the real grid and order, with factors")
def dsprites_procedural(data_root: Path, test_size: PositiveInt = 10_000,
                        train_size: PositiveInt | None = None) -> DSpritesDataset:
    """test_size: fixed seeded held-out rows; train_size: seeded subset of the remaining rows."""
    return DSpritesDataset("dsprites_procedural", SpriteRenderer(), test_size, train_size)

"""Colour, noisy and scream dSprites (Locatello et al. 2019, disentanglement_lib's dsprites.py),
on top of both the real archive and vaebench's procedural dSprites.

Same five factors and grid as dSprites; each observation is the binary sprite recoloured with
fresh randomness, exactly as the reference's `sample_observations_from_factors`:
- color_dsprites: sprite * a colour drawn uniform(0.5, 1) per channel (one draw of (B, 1, 1, 3));
- noisy_dsprites: min(sprite + noise, 1), noise uniform(0, 1) of shape (B, 64, 64, 3);
- scream_dsprites: background = (a random 64x64 crop of the Scream + uniform(0, 1) per
  channel) / 2, inverted (1 - background) under the sprite; per image the reference draws
  the crop row, the crop column, then the 3 channel shifts. The picture is
  <data root>/scream/scream.jpg (https://upload.wikimedia.org/wikipedia/commons/f/f4/
  The_Scream.jpg, public domain; the reference's path and URL), shrunk with PIL
  `thumbnail((350, 274))` as the reference does (current Pillow's default filter, BICUBIC with
  JPEG draft reduction; older Pillow gave slightly different pixels).
The metrics pass their random state, so they see the reference's draws. The training split
draws fresh randomness per batch from a RandomState seeded by torch's generator (so a run's
seed fixes it), as the reference's input pipeline samples every observation anew; the test
split (ELBO, FID) uses a fixed draw per grid row, seeded by the row, so evaluation is repeatable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from vaebench.data import dsprites as real
from vaebench.data.dsprites_grid import FACTOR_NAMES, FACTOR_SIZES, DSpritesDataset, factors_to_index
from vaebench.data.files import find_or_download
from vaebench.data.procedural_dsprites import SpriteRenderer
from vaebench.errors import VaebenchError
from vaebench.registry import register_dataset

SCREAM_FILE = "scream/scream.jpg"
SCREAM_URL = "https://upload.wikimedia.org/wikipedia/commons/f/f4/The_Scream.jpg"


class Colour:
    def draw(self, n, rs):
        return {"colour": rs.uniform(0.5, 1, [n, 1, 1, 3])}

    def apply(self, mask, d):
        """mask: (B, 64, 64, 1) float64 {0, 1} -> (B, 64, 64, 3)."""
        return np.repeat(mask, 3, axis=3) * d["colour"]


class Noisy:
    def draw(self, n, rs):
        return {"noise": rs.uniform(0, 1, [n, 64, 64, 3])}

    def apply(self, mask, d):
        return np.minimum(np.repeat(mask, 3, axis=3) + d["noise"], 1.0)


class Scream:
    def __init__(self, picture: np.ndarray):
        self.picture = picture  # (H, W, 3) float64 in [0, 1]

    def draw(self, n, rs):
        h, w = self.picture.shape[:2]
        crops, shifts = np.empty((n, 2), dtype=np.int64), np.empty((n, 3))
        for i in range(n):  # the reference's order: row, column, shift, image by image
            crops[i] = rs.randint(0, h - 64), rs.randint(0, w - 64)
            shifts[i] = rs.uniform(0, 1, size=3)
        return {"crop": crops, "shift": shifts}

    def apply(self, mask, d):
        out = np.empty(mask.shape[:3] + (3,))
        for i, ((r, c), shift) in enumerate(zip(d["crop"], d["shift"])):
            background = (self.picture[r:r + 64, c:c + 64] + shift) / 2.0
            sprite = np.repeat(mask[i], 3, axis=2) == 1
            background[sprite] = 1 - background[sprite]
            out[i] = background
        return out


def load_scream(data_root: Path) -> np.ndarray:
    path = find_or_download(data_root, SCREAM_FILE, "The Scream picture scream_dsprites uses",
                            f"It is Munch's The Scream from Wikimedia Commons (public domain), "
                            f"{SCREAM_URL}, saved as scream.jpg (disentanglement_lib's "
                            f"dlib_download_data does the same).", SCREAM_URL)
    try:
        with Image.open(path) as picture:
            picture = picture.convert("RGB")
            picture.thumbnail((350, 274))
            return np.asarray(picture) / 255.0
    except OSError as e:
        raise VaebenchError(f"{path}: not a readable image ({e}); download {SCREAM_URL} again") from None


def _concat(draws: list[dict]) -> dict:
    return {k: np.concatenate([d[k] for d in draws]) for k in draws[0]}


class VariantFactors:
    """dSprites' factors; observations are random given them (deterministic = False)."""

    factor_names, factor_sizes, deterministic = FACTOR_NAMES, FACTOR_SIZES, False

    def __init__(self, render, variant):
        self._render, self.variant = render, variant

    def sample_factors(self, num, random_state):
        return np.stack([random_state.randint(n, size=num) for n in FACTOR_SIZES], axis=1)

    def index_of(self, factors):
        return factors_to_index(factors)

    def observe(self, rows, draws) -> torch.Tensor:
        """Grid rows + the variant's draws -> (B, 3, 64, 64) float32."""
        mask = self._render(torch.as_tensor(np.asarray(rows), dtype=torch.long))
        mask = mask.permute(0, 2, 3, 1).double().numpy()
        return torch.from_numpy(self.variant.apply(mask, draws)).permute(0, 3, 1, 2).float().contiguous()

    def images_at(self, indices):
        """The fixed per-row draw (seeded by the row) the test split uses."""
        rows = np.asarray(torch.as_tensor(indices).cpu().numpy(), dtype=np.int64)
        if len(rows) == 0:
            return torch.zeros(0, 3, 64, 64)
        return self.observe(rows, _concat([self.variant.draw(1, np.random.RandomState(int(r)))
                                           for r in rows]))

    def sample_observations_from_factors(self, factors, random_state):
        return self.observe(self.index_of(factors), self.variant.draw(len(factors), random_state))


class VariantDataset(DSpritesDataset):
    image_shape = (3, 64, 64)

    def __init__(self, name, render, variant, test_size=10_000, train_size=None):
        super().__init__(name, render, test_size, train_size)
        self.factors = VariantFactors(render, variant)

    def _images(self, split, idx):
        rows = self.rows[split][idx]
        if split != "train":
            return self.factors.images_at(rows)
        rs = np.random.RandomState(int(torch.randint(0, 2**31 - 1, ()).item()))
        return self.factors.observe(rows.numpy(), self.factors.variant.draw(len(rows), rs))


def _register(kind: str, make_variant, what: str):
    def build(source: str, data_root, test_size, train_size):
        render = SpriteRenderer() if source == "procedural" else real.PackedRenderer(
            real.load_packed_images(real.find_or_download(data_root)))
        name = f"{kind}_dsprites" + ("_procedural" if source == "procedural" else "")
        return VariantDataset(name, render, make_variant(data_root), test_size, train_size)

    @register_dataset(f"{kind}_dsprites", description=f"{kind} dSprites (Locatello et al. 2019) on "
                      f"the real archive: {what}; 737,280 64x64 RGB, the dSprites factors")
    def on_archive(data_root: Path, test_size: int = 10_000, train_size: int | None = None):
        return build("archive", data_root, test_size, train_size)

    @register_dataset(f"{kind}_dsprites_procedural", description=f"{kind} dSprites on vaebench's "
                      f"procedural dSprites: {what}")
    def on_procedural(data_root: Path, test_size: int = 10_000, train_size: int | None = None):
        return build("procedural", data_root, test_size, train_size)

    return on_archive, on_procedural


color_dsprites, color_dsprites_procedural = _register(
    "color", lambda root: Colour(), "the sprite in a random colour")
noisy_dsprites, noisy_dsprites_procedural = _register(
    "noisy", lambda root: Noisy(), "uniform noise behind the sprite")
scream_dsprites, scream_dsprites_procedural = _register(
    "scream", lambda root: Scream(load_scream(root)), "a crop of The Scream, inverted under the sprite")

"""Colour, noisy and scream dSprites against disentanglement_lib's code, transcribed below."""

import urllib.request

import numpy as np
import pytest
import torch
from PIL import Image

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.data.dsprites_grid import factors_to_index
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS


def reference(kind, no_color, random_state, scream=None):
    """disentanglement_lib dsprites.py, {Color,Noisy,Scream}DSprites.sample_observations_from_factors,
    after sample_observations_from_factors_no_color; no_color: (B, 64, 64, 1) float32."""
    observations = np.repeat(no_color, 3, axis=3)
    if kind == "color":
        color = np.repeat(np.repeat(random_state.uniform(0.5, 1, [observations.shape[0], 1, 1, 3]),
                                    observations.shape[1], axis=1), observations.shape[2], axis=2)
        return observations * color
    if kind == "noisy":
        color = random_state.uniform(0, 1, [observations.shape[0], 64, 64, 3])
        return np.minimum(observations + color, 1.)
    observations = observations.astype(np.float64)
    for i in range(observations.shape[0]):
        x_crop = random_state.randint(0, scream.shape[0] - 64)
        y_crop = random_state.randint(0, scream.shape[1] - 64)
        background = (scream[x_crop:x_crop + 64, y_crop:y_crop + 64] + random_state.uniform(0, 1, size=3)) / 2.
        mask = (observations[i] == 1)
        background[mask] = 1 - background[mask]
        observations[i] = background
    return observations


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "scream").mkdir()
    rs = np.random.RandomState(0)
    Image.fromarray(rs.randint(0, 256, size=(500, 400, 3)).astype(np.uint8)).save(root / "scream" / "scream.jpg")
    return root


@pytest.mark.parametrize("kind", ["color", "noisy", "scream"])
def test_observations_are_the_references(kind, root):
    ds = DATASETS.get(f"{kind}_dsprites_procedural")(root, test_size=16, train_size=32)
    base = DATASETS.get("dsprites_procedural")(root, test_size=16, train_size=32)
    gt = ds.factors
    assert gt.factor_sizes == [3, 6, 40, 32, 32] and not gt.deterministic and ds.image_shape == (3, 64, 64)
    factors = gt.sample_factors(12, np.random.RandomState(0))
    ours = gt.sample_observations_from_factors(factors, np.random.RandomState(5))
    mask = base.factors.images_at(factors_to_index(factors)).permute(0, 2, 3, 1).numpy()
    scream = None
    if kind == "scream":
        with Image.open(root / "scream" / "scream.jpg") as pic:
            pic.thumbnail((350, 274))  # reference: thumbnail((350, 274, 3))
            scream = np.array(pic) * 1. / 255.
    expected = reference(kind, mask, np.random.RandomState(5), scream)
    assert ours.shape == (12, 3, 64, 64)
    np.testing.assert_allclose(ours.permute(0, 2, 3, 1).numpy(), expected, rtol=0, atol=1e-6)


def test_test_split_is_fixed_and_train_split_is_redrawn(root):
    ds = DATASETS.get("color_dsprites_procedural")(root, test_size=16, train_size=32)
    idx = torch.arange(8)
    assert torch.equal(ds.batch("test", idx)[0], ds.batch("test", idx)[0])
    torch.manual_seed(0)
    a = ds.batch("train", idx)[0]
    torch.manual_seed(0)
    assert torch.equal(a, ds.batch("train", idx)[0])  # the run's seed fixes the draws
    assert not torch.equal(a, ds.batch("train", idx)[0])  # and every batch draws anew
    # a colour only scales the sprite: the binary mask is the same image
    assert torch.equal((a > 0).any(1), (ds.batch("train", idx)[0] > 0).any(1))


def test_missing_scream_picture_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("scream_dsprites_procedural")(tmp_path)
    msg = str(err.value)
    assert str((tmp_path / "scream" / "scream.jpg").resolve()) in msg and "The_Scream.jpg" in msg

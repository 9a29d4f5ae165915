"""Cars3D: .mat files in Reed et al.'s layout (`im` 128x128x3x24x4 uint8), resized to 64x64."""

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS


def write_cars(folder, num_cars):
    """Car c, azimuth a, elevation e: a flat colour (40 c + 10, 10 a, 60 e) (flat, so the resize
    keeps it exactly)."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(num_cars):
        im = np.zeros((128, 128, 3, 24, 4), np.uint8)
        im[:, :, 0] = 40 * c + 10
        im[:, :, 1] = (10 * np.arange(24))[:, None]
        im[:, :, 2] = (60 * np.arange(4))[None, :]
        scipy.io.savemat(folder / f"car_{c + 1:03d}_mesh.mat", {"im": im})


def test_image_at_a_factor_tuple_is_the_files_view(tmp_path):
    write_cars(tmp_path / "cars", 2)
    ds = DATASETS.get("cars3d")(tmp_path, test_size=10, factor_sizes=[4, 24, 2])
    gt = ds.factors
    assert gt.factor_names == ["elevation", "azimuth", "object"] and gt.factor_sizes == [4, 24, 2]
    f = gt.sample_factors(64, np.random.RandomState(0))
    x = (gt.sample_observations_from_factors(f, np.random.RandomState(0)) * 255).round().long()
    assert x.shape == (64, 3, 64, 64)
    assert torch.equal(x[:, :, 32, 32], torch.from_numpy(np.stack([40 * f[:, 2] + 10, 10 * f[:, 1], 60 * f[:, 0]], 1)))


def test_resize_is_the_references_thumbnail(tmp_path):
    rs = np.random.RandomState(0)
    im = rs.randint(0, 256, size=(128, 128, 3, 24, 4)).astype(np.uint8)
    (tmp_path / "cars").mkdir()
    scipy.io.savemat(tmp_path / "cars" / "car_001_mesh.mat", {"im": im})
    gt = DATASETS.get("cars3d")(tmp_path, test_size=5, factor_sizes=[4, 24, 1]).factors
    pic = Image.fromarray(im[:, :, :, 7, 2])  # azimuth 7, elevation 2
    pic.thumbnail((64, 64), Image.LANCZOS)  # disentanglement_lib: thumbnail((64, 64, 3), ANTIALIAS)
    row = gt.rows_of(np.array([[2, 7, 0]]))
    assert np.array_equal((gt.images_at(row)[0] * 255).round().byte().permute(1, 2, 0).numpy(), np.asarray(pic))


def test_missing_or_partial_folder_is_a_clear_error(tmp_path):
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("cars3d")(tmp_path)
    assert str((tmp_path / "cars").resolve()) in str(err.value) and "scottreed.info" in str(err.value)
    write_cars(tmp_path / "cars", 2)
    with pytest.raises(VaebenchError, match=r"factor sizes \[4, 24, 2\]; the official file has \[4, 24, 183\]"):
        DATASETS.get("cars3d")(tmp_path)

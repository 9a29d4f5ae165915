"""3D Shapes: a small 3dshapes.h5 in the official layout, read lazily, factors and images aligned."""

import urllib.request

import h5py
import numpy as np
import pytest
import torch

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS

SIZES = [2, 3, 2, 2, 4, 3]  # a reduced grid; the official one is [10, 10, 10, 8, 4, 15]
# the official label values of each factor (hues in [0, 0.9], scale 0.75..1.25, shape 0..3,
# orientation -30..30 degrees), cut to the reduced sizes
VALUES = [np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
          np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15)]


def grid_classes(sizes):
    return np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, len(sizes))


def write_h5(path, sizes=SIZES, **dataset_options):
    """images[i] carries its factor classes in its first two pixels (x 10, so they are visible)."""
    classes = grid_classes(sizes)
    images = np.zeros((len(classes), 64, 64, 3), np.uint8)
    images[:, 0, 0, :], images[:, 0, 1, :] = classes[:, :3] * 10, classes[:, 3:] * 10
    labels = np.stack([VALUES[k][classes[:, k]] for k in range(6)], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images, **dataset_options)
        f.create_dataset("labels", data=labels.astype(np.float64))
    return classes


@pytest.mark.parametrize("options", [{}, {"chunks": (4, 64, 64, 3), "compression": "gzip"}],
                         ids=["contiguous", "chunked_gzip"])
def test_image_at_a_factor_tuple_is_the_files_row(tmp_path, options):
    write_h5(tmp_path / "3dshapes" / "3dshapes.h5", **options)
    ds = DATASETS.get("shapes3d")(tmp_path, test_size=20, factor_sizes=SIZES)
    gt = ds.factors
    assert gt.factor_names == ["floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation"]
    assert gt.factor_sizes == SIZES and gt.deterministic and ds.image_shape == (3, 64, 64)
    assert (gt._read._rows is not None) == (not options)  # read in place unless chunked
    factors = gt.sample_factors(50, np.random.RandomState(0))
    x = gt.sample_observations_from_factors(factors, np.random.RandomState(0))
    assert x.shape == (50, 3, 64, 64) and x.dtype == torch.float32
    seen = torch.cat([x[:, :, 0, 0], x[:, :, 0, 1]], 1) * 255 / 10
    assert np.array_equal(seen.round().long().numpy(), factors)
    # the trainer's batches and the factor classes the FID classifier trains on agree too
    idx = torch.arange(ds.num_examples("train"))
    xb, yb = ds.batch("train", idx)
    classes = ds.factor_classes("train", idx).numpy()
    assert np.array_equal(torch.cat([xb[:, :, 0, 0], xb[:, :, 0, 1]], 1).mul(25.5).round().long(), classes)
    assert torch.equal(yb, torch.from_numpy(classes[:, 4])) and ds.class_name == "shape"
    assert ds.num_examples("train") + ds.num_examples("test") == int(np.prod(SIZES))


def test_the_official_grid_is_required_without_the_test_option(tmp_path):
    write_h5(tmp_path / "3dshapes" / "3dshapes.h5")
    with pytest.raises(VaebenchError, match=r"factor sizes \[2, 3, 2, 2, 4, 3\]; the official "
                                            r"file has \[10, 10, 10, 8, 4, 15\]"):
        DATASETS.get("shapes3d")(tmp_path)


def test_rows_out_of_order_are_rejected(tmp_path):
    path = tmp_path / "3dshapes" / "3dshapes.h5"
    write_h5(path)
    with h5py.File(path, "r+") as f:
        labels = f["labels"][()]
        f["labels"][0:2] = labels[[1, 0]]
    with pytest.raises(VaebenchError, match="not in the 3D Shapes grid order"):
        DATASETS.get("shapes3d")(tmp_path, factor_sizes=SIZES)


def test_missing_or_truncated_file_is_one_paragraph(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("shapes3d")(tmp_path)
    msg = str(err.value)
    assert str((tmp_path / "3dshapes" / "3dshapes.h5").resolve()) in msg
    assert "https://storage.googleapis.com/3d-shapes/3dshapes.h5" in msg and "\n" not in msg
    assert not (tmp_path / "3dshapes" / "3dshapes.h5.part").exists()
    path = tmp_path / "3dshapes" / "3dshapes.h5"
    write_h5(path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(VaebenchError, match="not a readable HDF5 file"):
        DATASETS.get("shapes3d")(tmp_path, factor_sizes=SIZES)

"""MPI3D: a small .npz in the official layout (one uncompressed array `images`), read in place."""

import urllib.request

import numpy as np
import pytest

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.data.mpi3d import open_mpi3d
from vaebench.data.rowfile import RowReader
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS

SIZES = [2, 3, 2, 1, 2, 3, 2]  # reduced; the official grid is [6, 6, 2, 3, 3, 40, 40]


def write_npz(path, sizes=SIZES, compressed=False):
    classes = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1).reshape(-1, 7)
    images = np.zeros((len(classes), 64, 64, 3), np.uint8)
    images[:, 5, 7, :], images[:, 63, 63, :] = classes[:, :3], classes[:, 3:6]
    images[:, 10, 10, 0] = classes[:, 6]
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, images=images)


@pytest.mark.parametrize("variant", ["toy", "realistic", "real"])
def test_image_at_a_factor_tuple_is_the_files_row(tmp_path, variant):
    write_npz(tmp_path / f"mpi3d_{variant}" / f"mpi3d_{variant}.npz")
    ds = DATASETS.get(f"mpi3d_{variant}")(tmp_path, test_size=10, factor_sizes=SIZES)
    gt = ds.factors
    assert isinstance(gt._read.__closure__[0].cell_contents, RowReader)  # read in place, never loaded
    assert gt.factor_names[0] == "object_color" and gt.factor_names[-1] == "vertical_axis"
    f = gt.sample_factors(40, np.random.RandomState(3))
    x = (gt.sample_observations_from_factors(f, np.random.RandomState(0)) * 255).round().long().numpy()
    seen = np.concatenate([x[:, :, 5, 7], x[:, :, 63, 63], x[:, :1, 10, 10]], 1)
    assert np.array_equal(seen, f)
    assert ds.image_shape == (3, 64, 64) and ds.class_name == "object_shape"


def test_grid_is_read_from_the_row_count(tmp_path):
    # the official 1,036,800-image grid and the reference's 460,800-image copy are told apart
    # by their row count; a 30-row file is neither
    write_npz(tmp_path / "a.npz", sizes=[1, 2, 3, 5, 1, 1, 1])
    with pytest.raises(VaebenchError, match="30 images; the official MPI3D files have 1036800"):
        open_mpi3d(tmp_path / "a.npz")


def test_compressed_or_truncated_archive_is_a_clear_error(tmp_path):
    write_npz(tmp_path / "c.npz", compressed=True)
    with pytest.raises(VaebenchError, match="compressed, so its rows cannot be read in place"):
        open_mpi3d(tmp_path / "c.npz", SIZES)
    write_npz(tmp_path / "t.npz")
    data = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[:len(data) // 2])
    with pytest.raises(VaebenchError, match="not a readable .npz archive"):
        open_mpi3d(tmp_path / "t.npz", SIZES)


def test_missing_file_names_the_official_url(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("mpi3d_real")(tmp_path)
    msg = str(err.value)
    assert str((tmp_path / "mpi3d_real" / "mpi3d_real.npz").resolve()) in msg
    assert "https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/mpi3d_real.npz" in msg

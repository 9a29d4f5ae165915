"""smallNORB: the official binary matrix files (magic, ndim, dims, data), resized to 64x64."""

import numpy as np
import pytest
import torch
from PIL import Image

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.data.smallnorb import CHUNKS, read_binary_matrix
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS

# reduced grid: category 2, instance 2 (1 in each file), elevation 2, azimuth 3, lighting 2
SIZES = [2, 2, 2, 3, 2]


def write_matrix(path, array, magic):
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    header = np.array([magic, array.ndim] + dims, dtype="<i4")
    path.write_bytes(header.tobytes() + array.astype(array.dtype.newbyteorder("<")).tobytes())


def write_norb(folder, rs=np.random.RandomState(0)):
    """Each chunk holds one instance; rows in a shuffled order, as a reader must not assume it.
    Returns {(category, instance, elevation, azimuth / 2, lighting): left 96x96 image}."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = {}
    for instance, chunk in enumerate(CHUNKS):
        rows = [(c, e, a, l) for c in range(2) for e in range(2) for a in range(3) for l in range(2)]
        rows = [rows[i] for i in rs.permutation(len(rows))]
        dat = rs.randint(0, 256, size=(len(rows), 2, 96, 96)).astype(np.uint8)
        cat = np.array([r[0] for r in rows], np.int32)
        info = np.array([[instance, e, 2 * a, l] for _, e, a, l in rows], np.int32)
        for (c, e, a, l), d in zip(rows, dat):
            truth[(c, instance, e, a, l)] = d[0]
        write_matrix(folder / f"smallnorb-{chunk}-dat.mat", dat, 0x1E3D4C55)
        write_matrix(folder / f"smallnorb-{chunk}-cat.mat", cat, 0x1E3D4C54)
        write_matrix(folder / f"smallnorb-{chunk}-info.mat", info, 0x1E3D4C54)
    return truth


def test_binary_matrix_header_is_read(tmp_path):
    write_matrix(tmp_path / "m", np.arange(6, dtype=np.int32), 0x1E3D4C54)  # 1-d: 3 dims stored
    assert read_binary_matrix(tmp_path / "m").tolist() == list(range(6))
    write_matrix(tmp_path / "m", np.arange(24, dtype=np.uint8).reshape(1, 2, 3, 4), 0x1E3D4C55)
    assert read_binary_matrix(tmp_path / "m").shape == (1, 2, 3, 4)
    (tmp_path / "m").write_bytes((tmp_path / "m").read_bytes()[:-3])
    with pytest.raises(VaebenchError, match="truncated"):
        read_binary_matrix(tmp_path / "m")


def test_observation_is_the_files_image_with_a_random_instance(tmp_path):
    truth = write_norb(tmp_path / "small_norb")
    ds = DATASETS.get("smallnorb")(tmp_path, test_size=8, factor_sizes=SIZES)
    gt = ds.factors
    assert gt.factor_names == ["category", "elevation", "azimuth", "lighting"] and not gt.deterministic
    f = gt.sample_factors(30, np.random.RandomState(1))
    rs = np.random.RandomState(2)
    x = gt.sample_observations_from_factors(f, rs)
    # the reference fills the instance with one randint after the latent factors
    instance = np.random.RandomState(2).randint(2, size=30)
    assert x.shape == (30, 1, 64, 64)
    for (c, e, a, l), i, img in zip(f, instance, x):
        pic = Image.fromarray(truth[(c, i, e, a, l)]).resize((64, 64), Image.LANCZOS)
        assert torch.equal((img[0] * 255).round().byte(), torch.from_numpy(np.array(pic)))
    assert ds.num_classes == 2 and ds.factor_classes("test", torch.arange(8)).shape == (8, 4)


def test_missing_file_is_named(tmp_path):
    write_norb(tmp_path / "small_norb")
    (tmp_path / "small_norb" / f"smallnorb-{CHUNKS[1]}-info.mat").unlink()
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("smallnorb")(tmp_path, factor_sizes=SIZES)
    assert f"smallnorb-{CHUNKS[1]}-info.mat" in str(err.value) and "cs.nyu.edu" in str(err.value)
    with pytest.raises(VaebenchError, match="exist"):
        DATASETS.get("smallnorb")(tmp_path / "elsewhere")

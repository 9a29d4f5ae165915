"""dSprites: the procedural renderer, the factor grid, and the real-archive loader."""

import numpy as np
import pytest
import torch

from vaebench.data.dsprites import load_packed_images
from vaebench.data.dsprites_grid import NUM_IMAGES, factors_to_index, index_to_factors
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS

import vaebench.data  # noqa: F401  (registers datasets)


@pytest.fixture(scope="module")
def ds():
    return DATASETS.get("dsprites_procedural")(None)


def rows(**f):
    base = {"shape": 0, "scale": 5, "orientation": 0, "pos_x": 16, "pos_y": 16} | f
    return factors_to_index(np.array([[base[k] for k in ["shape", "scale", "orientation", "pos_x", "pos_y"]]]))


def centroid(img):
    ys, xs = torch.nonzero(img[0, 0], as_tuple=True)
    return xs.float().mean().item(), ys.float().mean().item()


def test_grid_order_matches_the_archive_formula():
    f = np.array([[2, 5, 39, 31, 31], [1, 3, 7, 16, 0], [0, 0, 0, 0, 1]])
    expected = [((((2 * 6 + 5) * 40 + 39) * 32 + 31) * 32 + 31), ((((1 * 6 + 3) * 40 + 7) * 32 + 16) * 32),
                1]
    assert factors_to_index(f).tolist() == expected
    assert np.array_equal(index_to_factors(factors_to_index(f)), f)
    assert NUM_IMAGES == 737_280


def test_images_are_binary_and_deterministic(ds):
    idx = np.random.RandomState(0).randint(NUM_IMAGES, size=256)
    a = ds.factors.images_at(idx)
    b = DATASETS.get("dsprites_procedural")(None).factors.images_at(idx)
    assert a.shape == (256, 1, 64, 64) and torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert (a.flatten(1).sum(1) > 0).all()  # every image shows a shape


def test_factors_change_the_image_as_named(ds):
    img = lambda **f: ds.factors.images_at(rows(**f))  # noqa: E731
    # position moves the centroid monotonically, x with pos_x and y with pos_y
    xs = [centroid(img(pos_x=p))[0] for p in (0, 8, 16, 24, 31)]
    ys = [centroid(img(pos_y=p))[1] for p in (0, 8, 16, 24, 31)]
    assert xs == sorted(xs) and xs[-1] - xs[0] == pytest.approx(31, abs=0.01)
    assert ys == sorted(ys) and ys[-1] - ys[0] == pytest.approx(31, abs=0.01)
    areas = [img(scale=s).sum().item() for s in range(6)]
    assert areas == sorted(areas) and areas[-1] > 3 * areas[0]
    shapes = [img(shape=s) for s in range(3)]
    assert not torch.equal(shapes[0], shapes[1]) and not torch.equal(shapes[1], shapes[2])
    # an ellipse turned a quarter turn (orientation 10 of 40) is not the same picture
    assert not torch.equal(img(shape=1, orientation=0), img(shape=1, orientation=10))
    # the grid's orientation runs over [0, 2pi]: first and last are the same angle
    assert torch.equal(img(shape=2, orientation=0), img(shape=2, orientation=39))


def test_factor_interface_round_trips(ds):
    rs = np.random.RandomState(3)
    f = ds.factors.sample_factors(500, rs)
    assert f.shape == (500, 5) and (f.max(0) < np.array(ds.factors.factor_sizes)).all()
    obs = ds.factors.sample_observations_from_factors(f, rs)
    assert torch.equal(obs, ds.factors.images_at(ds.factors.index_of(f)))


def test_splits_are_disjoint_and_labels_are_the_shape(ds):
    train, test = ds.rows["train"], ds.rows["test"]
    assert len(test) == 10_000 and len(train) + len(test) == NUM_IMAGES
    assert len(np.intersect1d(train.numpy(), test.numpy())) == 0
    x, y = ds.batch("test", torch.arange(5))
    assert torch.equal(y, torch.from_numpy(index_to_factors(test[:5].numpy())[:, 0]))
    small = DATASETS.get("dsprites_procedural")(None, train_size=100)
    assert small.num_examples("train") == 100 and torch.equal(small.rows["test"], test)


def sprite_bank(n: int = 997) -> np.ndarray:
    """n binary 64x64 images, each a white rectangle on black (as sparse as dSprites' sprites,
    so the archive deflates as the real one does); image i of the archive is bank[i % n]."""
    rs = np.random.RandomState(0)
    bank = np.zeros((n, 64, 64), np.uint8)
    for img in bank:
        y, x = rs.randint(0, 48, size=2)
        h, w = rs.randint(4, 16, size=2)
        img[y:y + h, x:x + w] = 1
    return bank


def write_archive(path, bank):
    """The published archive layout (a zip of .npy arrays: imgs (737280, 64, 64) uint8,
    latents_classes and latents_values (737280, 6) in grid order; deflated, like the real file),
    streamed chunk by chunk so the test never holds the 3 GB array."""
    import zipfile

    f = index_to_factors(np.arange(NUM_IMAGES))
    classes = np.concatenate([np.zeros((NUM_IMAGES, 1), dtype=np.int64), f], axis=1)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("imgs.npy", "w", force_zip64=True) as out:
            np.lib.format.write_array_header_1_0(
                out, {"descr": "|u1", "fortran_order": False, "shape": (NUM_IMAGES, 64, 64)})
            for s in range(0, NUM_IMAGES, 65536):
                out.write(bank[np.arange(s, min(s + 65536, NUM_IMAGES)) % len(bank)].data)
        for name, arr in [("latents_classes", classes), ("latents_values", classes.astype(np.float64))]:
            with zf.open(f"{name}.npy", "w", force_zip64=True) as out:
                np.lib.format.write_array(out, arr)


def test_real_archive_loader_reads_the_real_format(tmp_path, ds):
    """An archive in the published format loads back bit for bit, in grid order."""
    (tmp_path / "dsprites").mkdir()
    bank = sprite_bank()
    write_archive(tmp_path / "dsprites" / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz", bank)
    real = DATASETS.get("dsprites")(tmp_path)
    idx = np.concatenate([[0, NUM_IMAGES - 1], np.random.RandomState(1).randint(NUM_IMAGES, size=510)])
    expected = torch.from_numpy(bank[idx % len(bank)]).float().unsqueeze(1)
    assert torch.equal(real.factors.images_at(idx), expected)
    assert torch.equal(real.labels("test"), ds.labels("test"))


def test_missing_archive_says_where_to_put_it(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("dsprites")(tmp_path)
    msg = str(err.value)
    assert str((tmp_path / "dsprites" / "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz").resolve()) in msg
    assert "https://" in msg and "dsprites_procedural" in msg


def test_invalid_archive_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, imgs=np.zeros((10, 64, 64), np.uint8), latents_classes=np.zeros((10, 6), np.int64))
    with pytest.raises(VaebenchError, match=r"latents_classes has shape \(10, 6\)"):
        load_packed_images(path)
    np.savez(path, imgs=np.zeros((10, 64, 64), np.uint8))
    with pytest.raises(VaebenchError, match="missing array"):
        load_packed_images(path)

"""MNIST through torchvision from the shared data root."""

from pathlib import Path

import pytest
import torch

from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS

import vaebench.data  # noqa: F401

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_real_mnist_loads():
    ds = DATASETS.get("mnist")(DATA)
    assert ds.num_examples("train") == 60_000 and ds.num_examples("test") == 10_000
    assert ds.image_shape == (1, 28, 28) and ds.num_classes == 10
    assert ds.labels("train")[:5].tolist() == [5, 0, 4, 1, 9]
    assert ds.labels("test")[:5].tolist() == [7, 2, 1, 0, 4]
    x, y = ds.batch("train", torch.tensor([0, 1]))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert abs(ds._x["train"].float().mean().item() / 255 - 0.1307) < 1e-3


def test_train_size_is_a_seeded_subset():
    a = DATASETS.get("mnist")(DATA, train_size=100)
    b = DATASETS.get("mnist")(DATA, train_size=100)
    assert a.num_examples("train") == 100 and torch.equal(a.labels("train"), b.labels("train"))
    assert a.num_examples("test") == 10_000


def test_missing_files_fail_fast_with_where_to_put_them(tmp_path, monkeypatch):
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("mnist")(tmp_path)
    msg = str(err.value)
    assert str(tmp_path.resolve() / "MNIST" / "raw") in msg and "train-images-idx3-ubyte" in msg


def test_binarisation_dynamic_static_and_none():
    grey = DATASETS.get("mnist")(DATA, train_size=200, binarize="none")
    static = DATASETS.get("mnist")(DATA, train_size=200, binarize="static")
    dynamic = DATASETS.get("mnist")(DATA, train_size=200)  # the default
    idx = torch.arange(64)
    x_grey = grey.batch("train", idx)[0]
    assert ((x_grey > 0) & (x_grey < 1)).any()  # grey levels kept
    # static: one fixed binarisation, the same on every load and every batch
    a = static.batch("train", idx)[0]
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, static.batch("train", idx)[0])
    assert torch.equal(a, DATASETS.get("mnist")(DATA, train_size=200, binarize="static").batch("train", idx)[0])
    # dynamic: binary, resampled each batch, reproducible from the trainer's generator
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    d1, d2 = dynamic.batch("train", idx, generator=g1)[0], dynamic.batch("train", idx, generator=g2)[0]
    assert set(d1.unique().tolist()) <= {0.0, 1.0} and torch.equal(d1, d2)
    assert not torch.equal(d1, dynamic.batch("train", idx, generator=g1)[0])
    # pixel means follow the grey levels (Bernoulli of the grey value)
    many = torch.stack([dynamic.batch("train", idx, generator=g1)[0] for _ in range(200)]).mean(0)
    assert (many - x_grey).abs().mean() < 0.02
    # the test split is binarised once, with a fixed seed, for every run alike
    t_dyn, t_static = dynamic.batch("test", idx)[0], static.batch("test", idx)[0]
    assert set(t_dyn.unique().tolist()) <= {0.0, 1.0} and torch.equal(t_dyn, t_static)
    assert ((grey.batch("test", idx)[0] > 0) & (grey.batch("test", idx)[0] < 1)).any()


def test_grey_levels_under_a_bernoulli_decoder_are_refused(tmp_path):
    from vaebench.runner.suite import load_suite

    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndatasets: [{name: mnist, params: {binarize: none}}]\nmodels: [vae]\n")
    with pytest.raises(VaebenchError, match="binarize.*Bernoulli.*dynamic"):
        load_suite(path)

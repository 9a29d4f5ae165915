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

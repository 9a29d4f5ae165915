"""Fashion-MNIST from idx files in torchvision's layout, and the missing-file paragraph."""

import urllib.request

import numpy as np
import pytest
import torch

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS


def write_idx(path, array):
    magic = {1: 2049, 3: 2051}[array.ndim]
    header = np.array([magic, *array.shape], dtype=">i4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_idx_files_load_as_images_and_articles(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rs = np.random.RandomState(0)
    images = {s: rs.randint(0, 256, size=(n, 28, 28)) for s, n in (("train", 12), ("t10k", 5))}
    for s, n in (("train", 12), ("t10k", 5)):
        write_idx(raw / f"{s}-images-idx3-ubyte", images[s])
        write_idx(raw / f"{s}-labels-idx1-ubyte", np.arange(n) % 10)
    ds = DATASETS.get("fashion_mnist")(tmp_path)
    assert ds.image_shape == (1, 28, 28) and ds.num_classes == 10 and ds.num_examples("test") == 5
    x, y = ds.batch("train", torch.tensor([3, 11]))
    assert torch.equal((x[:, 0] * 255).round().long(), torch.from_numpy(images["train"][[3, 11]]))
    assert y.tolist() == [3, 1]


def test_missing_files_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("fashion_mnist")(tmp_path)
    assert str((tmp_path / "FashionMNIST" / "raw").resolve()) in str(err.value)
    assert "zalandoresearch" in str(err.value)

"""CIFAR-10: the missing-file paragraph and the 64x64 option (the files themselves are md5-checked
by torchvision, so a test cannot write stand-ins)."""

import types
import urllib.request

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.data.cifar10 import _images
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS


def test_missing_files_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.raises(VaebenchError) as err:
        DATASETS.get("cifar10")(tmp_path)
    msg = str(err.value)
    assert str((tmp_path / "cifar-10-batches-py").resolve()) in msg and "cs.toronto.edu" in msg
    with pytest.raises(VaebenchError, match="image_size must be 32 or 64"):
        DATASETS.get("cifar10")(tmp_path, image_size=48)


def test_images_are_channels_first_and_upsampled_on_request():
    ramp = np.add.outer(np.arange(32), np.arange(32)) * 4  # a smooth picture, 0..248
    data = np.stack([ramp, ramp[::-1], 255 - ramp], -1)[None].repeat(3, 0).astype(np.uint8)
    split = types.SimpleNamespace(data=data)
    assert torch.equal(_images(split, 32), torch.from_numpy(data).permute(0, 3, 1, 2))
    up = _images(split, 64)
    assert up.shape == (3, 3, 64, 64) and up.dtype == torch.uint8
    # a 2x upsample of a smooth picture: averaging 2x2 blocks gives it back (away from the border)
    back = F.avg_pool2d(up.float(), 2)
    orig = torch.from_numpy(data).permute(0, 3, 1, 2).float()
    assert (back - orig)[..., 1:-1, 1:-1].abs().max() <= 1

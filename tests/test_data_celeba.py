"""CelebA: aligned JPEGs + list_eval_partition.txt -> 64x64 centre crops, cached and memory-mapped."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

import vaebench.data  # noqa: F401  (registers datasets)
from vaebench.errors import VaebenchError
from vaebench.registry import DATASETS


@pytest.fixture
def root(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rs = np.random.RandomState(0)
    lines = []
    for i, part in enumerate([0, 0, 1, 2, 0, 2]):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rs.randint(0, 256, size=(218, 178, 3)).astype(np.uint8)).save(folder / name)
        lines.append(f"{name} {part}")
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_splits_crop_and_cache(root):
    ds = DATASETS.get("celeba")(root)
    assert ds.num_examples("train") == 3 and ds.num_examples("test") == 2 and ds.image_shape == (3, 64, 64)
    usual = transforms.Compose([transforms.CenterCrop(148), transforms.Resize(64), transforms.PILToTensor()])
    with Image.open(root / "celeba" / "img_align_celeba" / "000004.jpg") as img:  # first test image
        expected = usual(img.convert("RGB"))
    x, _ = ds.batch("test", torch.tensor([0]))
    assert torch.equal((x[0] * 255).round().byte(), expected)
    cache = root / "celeba" / "vaebench-crop148-64x64-train.npy"
    assert cache.is_file() and not list((root / "celeba").glob("*.part"))
    again = DATASETS.get("celeba")(root)
    assert isinstance(again._x["train"], np.memmap)
    assert torch.equal(again.batch("train", torch.arange(3))[0], ds.batch("train", torch.arange(3))[0])


def test_missing_files_are_named(root, tmp_path):
    with pytest.raises(VaebenchError, match="list_eval_partition.txt"):
        DATASETS.get("celeba")(tmp_path / "elsewhere")
    (root / "celeba" / "img_align_celeba" / "000006.jpg").unlink()
    with pytest.raises(VaebenchError, match="000006.jpg"):
        DATASETS.get("celeba")(root)


def test_domain_extractor_is_not_applicable_without_labels(root):
    from vaebench.errors import NotApplicable
    from vaebench.metrics.fid.domain import domain_extractor

    with pytest.raises(NotApplicable, match="extractor: inception"):
        domain_extractor(DATASETS.get("celeba")(root), None, root)

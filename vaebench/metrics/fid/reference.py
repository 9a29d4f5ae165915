"""Reference statistics: feature mean and covariance of the real test images, cached on disk.

The real images are num_samples test images: the whole split, or a subset drawn with seed 0 (the
same for every run and seed, so all runs compare against one reference). Statistics are cached at
<cache_dir>/fid/reference/<dataset>-<extractor>-<key>.npz, key = hash of (extractor key, the
8-bit content of those images), so a changed dataset or extractor never reads a stale file.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import torch

from vaebench.data.base import ImageDataset
from vaebench.metrics.fid.frechet import FeatureExtractor, FeatureStatistics, feature_statistics, quantize
from vaebench.files import atomic_write_bytes

REFERENCE_SEED = 0


def real_indices(dataset: ImageDataset, num: int) -> torch.Tensor:
    """(num,) int64 sorted test-split indices: all of them, or a seed-0 random subset."""
    n_test = dataset.num_examples("test")
    if num >= n_test:
        return torch.arange(n_test)
    gen = torch.Generator().manual_seed(REFERENCE_SEED)
    return torch.randperm(n_test, generator=gen)[:num].sort().values


def real_batches(dataset: ImageDataset, idx: torch.Tensor, batch_size: int, device="cpu"):
    """(x, y) batches of the test split at idx, in order."""
    for start in range(0, len(idx), batch_size):
        yield dataset.batch("test", idx[start:start + batch_size], device)


def reference_key(dataset: ImageDataset, idx: torch.Tensor, extractor: FeatureExtractor) -> str:
    digest = hashlib.sha256(f"{extractor.name}:{extractor.key}".encode())
    for x, _ in real_batches(dataset, idx, 2048):
        digest.update(quantize(x).mul(255).to(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def reference_statistics(dataset: ImageDataset, extractor: FeatureExtractor, num: int,
                         cache_dir: Path | None, batch_size: int = 100) -> tuple[FeatureStatistics, dict]:
    """Statistics of `num` real test images (see real_indices) and {"cache": "hit" | "miss" |
    "off", "path": file}. cache_dir None: computed every time, nothing written."""
    idx = real_indices(dataset, num)
    if cache_dir is None:
        images = (x for x, _ in real_batches(dataset, idx, batch_size))
        return feature_statistics(images, extractor), {"cache": "off"}
    key = reference_key(dataset, idx, extractor)
    path = Path(cache_dir) / "fid" / "reference" / f"{dataset.name}-{extractor.name}-{key[:24]}.npz"
    if path.is_file():
        with np.load(path) as f:
            stats = FeatureStatistics(f["mu"], f["sigma"], int(f["num_images"]))
        return stats, {"cache": "hit", "path": str(path)}
    stats = feature_statistics((x for x, _ in real_batches(dataset, idx, batch_size)), extractor)
    buf = io.BytesIO()
    np.savez(buf, mu=stats.mu, sigma=stats.sigma, num_images=stats.num_images)
    atomic_write_bytes(path, buf.getvalue())
    return stats, {"cache": "miss", "path": str(path)}

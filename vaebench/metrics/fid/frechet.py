"""Frechet distance between the feature statistics of two image sets, on arrays.

The distance itself is pytorch-fid's `calculate_frechet_distance` (Heusel et al. 2017):
    d^2 = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2)).
What is fed to it is vaebench's: features of images (N, C, H, W) in [0, 1], quantised to 8 bits
first (as PNG files are), from any `FeatureExtractor` (Inception pool3, or the domain classifier).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from scipy.linalg import LinAlgWarning
from threadpoolctl import threadpool_limits
from torch import nn


class FeatureExtractor(nn.Module):
    """images (B, C, H, W) in [0, 1] -> features (B, dim).

    name: "domain" or "inception", the suffix of the score columns (fid_domain, ...).
    key: a content hash that identifies the extractor's weights and preprocessing; cached
    reference statistics are looked up by it.
    info: what the metric records about the extractor (accuracy, weights file, ...).
    """

    name: str
    key: str
    dim: int
    info: dict


@dataclass
class FeatureStatistics:
    """mu (D,) and sigma (D, D) float64 of the features of num_images images."""

    mu: np.ndarray
    sigma: np.ndarray
    num_images: int


def quantize(images: torch.Tensor) -> torch.Tensor:
    """Round to 8 bits the way a PNG writer does (torchvision's save_image), back in [0, 1]."""
    return images.clamp(0, 1).mul(255).add(0.5).floor().div(255)


@torch.no_grad()
def extract_features(batches: Iterable[torch.Tensor], extractor: FeatureExtractor) -> np.ndarray:
    """Features (N, D) float64 of image batches (B, C, H, W) in [0, 1], in order."""
    device = next(extractor.parameters()).device
    extractor.eval()
    out = [extractor(quantize(x.to(device).float())).double().cpu() for x in batches]
    return torch.cat(out).numpy() if out else np.zeros((0, extractor.dim))


def statistics_of_features(features: np.ndarray) -> FeatureStatistics:
    """Mean and covariance (ddof=1, as pytorch-fid) of features (N, D); N >= 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"FID needs at least 2 images; got features of shape {features.shape}")
    return FeatureStatistics(features.mean(axis=0), np.cov(features, rowvar=False), len(features))


def batches_of(images: torch.Tensor, batch_size: int) -> Iterable[torch.Tensor]:
    return (images[i:i + batch_size] for i in range(0, len(images), batch_size))


def feature_statistics(images: torch.Tensor | Iterable[torch.Tensor], extractor: FeatureExtractor,
                       batch_size: int = 100) -> FeatureStatistics:
    """Statistics of the features of images (N, C, H, W) in [0, 1], or of an iterable of batches."""
    batches = batches_of(images, batch_size) if torch.is_tensor(images) else images
    return statistics_of_features(extract_features(batches, extractor))


def frechet_distance(a: FeatureStatistics, b: FeatureStatistics) -> float:
    """pytorch-fid's Frechet distance between two feature statistics (symmetric; 0 for a == b).

    OpenBLAS's worker threads spin while they wait; on cores shared with other work that made
    the matrix square root 100x slower, while one thread does a 2048x2048 one in about 15 s.
    """
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        # Nothing here a user can act on: pytorch-fid 0.3 passes scipy's deprecated `disp`, and
        # a collapsed model's near-constant images (or fewer images than feature dimensions)
        # give a singular covariance, which sqrtm warns about and pytorch-fid handles.
        warnings.filterwarnings("ignore", message=".*`disp` argument is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=LinAlgWarning)
        warnings.filterwarnings("ignore", message="invalid value encountered", category=RuntimeWarning)
        return float(calculate_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))


def frechet_distance_of_images(real: torch.Tensor, fake: torch.Tensor, extractor: FeatureExtractor,
                               batch_size: int = 100) -> float:
    """FID between two image sets (N, C, H, W) in [0, 1] under `extractor` (lower = closer)."""
    return frechet_distance(feature_statistics(real, extractor, batch_size),
                            feature_statistics(fake, extractor, batch_size))

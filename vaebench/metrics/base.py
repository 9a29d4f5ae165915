"""What a registered metric receives and returns.

A registered metric is a function `fn(ctx: EvalContext, **params) -> MetricResult`; its keyword
parameters (with the paper's defaults) are what a suite may set under `metrics: [{name, params}]`.
It raises `NotApplicable` when the run's dataset lacks what it needs (e.g. ground-truth factors),
and `VaebenchError` for a failure the user can fix (e.g. missing Inception weights): the run
records either under that metric and still writes every other metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vaebench.data.base import ImageDataset
from vaebench.models.base import LatentVariableModel


@dataclass
class MetricResult:
    """scores: flat name -> float, one leaderboard column each (e.g. {"mig": 0.31}).
    details: anything JSON-serialisable kept in the run's metrics.json (per-factor values...)."""

    scores: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalContext:
    """Everything a metric may use about one finished run. The model is in eval mode."""

    model: LatentVariableModel
    dataset: ImageDataset
    device: torch.device
    seed: int
    data_root: Path
    batch_size: int = 256
    cache_dir: Path | None = None  # for cached extractors / reference statistics
    fid_weights: Path | None = None  # Inception weights file given by the user (--fid-weights)
    # Shared by the metrics of one run (e.g. a code table of the dataset's factor grid).
    cache: dict[str, Any] = field(default_factory=dict)

    @torch.no_grad()
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """Representation (posterior mean) of images (N, C, H, W) in [0, 1] -> (N, D) float64."""
        out = []
        for start in range(0, len(images), self.batch_size):
            x = images[start:start + self.batch_size].to(self.device)
            y = None if labels is None else labels[start:start + self.batch_size].to(self.device)
            out.append(self.model.representation(x, y).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0))

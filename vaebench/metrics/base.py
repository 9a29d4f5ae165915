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
from typing import Any, Callable

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


class EvalContext:
    """Everything a metric may use about one trained run. The model is in eval mode.

    `model` may be given, or loaded on first use by `model_loader`: a metric answered from the
    run's kept code table never loads it (`model_loaded` says whether it was). `conditional`
    tells whether the model needs labels without loading it.
    `seed` is the evaluation seed (not the training seed): metrics draw their samples from it.
    """

    def __init__(self, model: LatentVariableModel | None = None, dataset: ImageDataset | None = None,
                 device: torch.device | str = "cpu", seed: int = 0, data_root: Path | str | None = None,
                 batch_size: int = 256, cache_dir: Path | None = None, fid_weights: Path | None = None,
                 model_loader: Callable[[], LatentVariableModel] | None = None,
                 conditional: bool | None = None):
        if model is None and model_loader is None:
            raise ValueError("EvalContext needs a model or a model_loader")
        self._model, self._loader = model, model_loader
        self.dataset, self.device, self.seed = dataset, torch.device(device), seed
        self.data_root = None if data_root is None else Path(data_root)
        self.batch_size = batch_size
        self.cache_dir = cache_dir  # for cached extractors / reference statistics
        self.fid_weights = fid_weights  # Inception weights file given by the user (--fid-weights)
        self.conditional = (getattr(model, "conditional", False) if conditional is None else conditional)
        # Shared by the metrics of one run (e.g. a code table of the dataset's factor grid).
        self.cache: dict[str, Any] = {}

    @property
    def model(self) -> LatentVariableModel:
        if self._model is None:
            self._model = self._loader()
        return self._model

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @torch.no_grad()
    def encode(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> np.ndarray:
        """Representation (posterior mean) of images (N, C, H, W) in [0, 1] -> (N, D) float64."""
        out = []
        for start in range(0, len(images), self.batch_size):
            x = images[start:start + self.batch_size].to(self.device)
            y = None if labels is None else labels[start:start + self.batch_size].to(self.device)
            out.append(self.model.representation(x, y).double().cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0))

"""Datasets. Each module registers its datasets with `@register_dataset`; importing it is enough."""

from vaebench.data import dsprites, mnist, procedural_dsprites  # noqa: F401  (registers datasets)
from vaebench.data.base import GroundTruthFactors, ImageDataset, TensorImageDataset

__all__ = ["GroundTruthFactors", "ImageDataset", "TensorImageDataset"]

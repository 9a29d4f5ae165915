"""Datasets. Each module registers its datasets with `@register_dataset`; importing it is enough."""

from vaebench.data import (  # noqa: F401  (registers datasets)
    cars3d, celeba, cifar10, dsprites, dsprites_variants, fashion_mnist, mnist, mpi3d,
    procedural_dsprites, shapes3d, smallnorb)
from vaebench.data.base import GroundTruthFactors, ImageDataset, TensorImageDataset

__all__ = ["GroundTruthFactors", "ImageDataset", "TensorImageDataset"]

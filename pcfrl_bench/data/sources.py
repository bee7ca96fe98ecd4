"""Pretraining data sources by name (``data.source``): each builds a Dataset of dict items with an "image"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset, Subset

from ..config import DataConfig
from ..registry import Registry
from .digits import digits_split
from .tensors import TensorImageDataset

SourceBuilder = Callable[[DataConfig, Path], Dataset]
SOURCES: Registry[SourceBuilder] = Registry("pretraining source")


@SOURCES.register("digits")
def digits_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The train split of scikit-learn's digits (labels kept for analysis, never used by the losses)."""
    images, labels = digits_split("train", cfg.image_size)
    return TensorImageDataset(images, {"label": labels})


def build_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The pretraining dataset of ``cfg.source``, capped to ``cfg.max_samples`` items when set."""
    dataset = SOURCES.get(cfg.source)(cfg, data_root)
    if cfg.max_samples and cfg.max_samples < len(dataset):
        dataset = Subset(dataset, range(cfg.max_samples))
    return dataset

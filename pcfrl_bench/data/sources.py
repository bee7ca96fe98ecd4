"""Pretraining data sources by name (``data.source``): each builds a Dataset of dict items with an "image".

The sources registered here are built in (digits, the synthetic world, VoxCeleb's clips); a dataset format gives
its own by name (``sources`` of its class in ``data/readers/<format>.py``, e.g. ``bu3dfe-train``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from ..config import DataConfig
from ..errors import UnknownNameError
from ..registry import Registry
from .digits import digits_split
from .readers import SampleIndex, dataset_formats, dataset_root, epoch_frame_index, read_voxceleb
from .readers.dataset import ImageIndexDataset
from .synthetic import SyntheticClips, SyntheticWorld, WorldStyle
from .tensors import TensorImageDataset

SourceBuilder = Callable[[DataConfig, Path], Dataset]
SOURCES: Registry[SourceBuilder] = Registry("pretraining source")


@SOURCES.register("digits")
def digits_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The train split of scikit-learn's digits (labels kept for analysis, never used by the losses)."""
    images, labels = digits_split("train", cfg.image_size)
    return TensorImageDataset(images, {"label": labels})


@SOURCES.register("synth")
def synthetic_source(cfg: DataConfig, data_root: Path, draws: int = 1) -> Dataset:
    """The synthetic face world's pretraining clips (``draws`` frames per clip per epoch; 1 is like VoxCeleb)."""
    w = cfg.synthetic
    world = SyntheticWorld(w.seed, w.identities, w.clips_per_identity, w.frames_per_clip, role="pretrain",
                           style=WorldStyle.of(w))
    return SyntheticClips(world, cfg.image_size, draws)


def format_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """A split of a dataset format, from ``<data-root>/<its default folder>``, as the format names the source."""
    found = {name: (fmt, *spec) for fmt in dataset_formats() for name, spec in fmt.sources.items()}
    if cfg.source not in found:
        raise UnknownNameError("pretraining source", cfg.source, [*SOURCES.names(), *found])
    fmt, split, options = found[cfg.source]
    index = fmt.read(dataset_root(fmt.name, data_root), **options)[split]
    return ImageIndexDataset(index, cfg.image_size, **fmt.image_options(index))


def build_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The pretraining dataset of ``cfg.source``, capped to ``cfg.max_samples`` items when set."""
    builder = SOURCES.get(cfg.source) if cfg.source in SOURCES else format_source
    dataset = builder(cfg, data_root)
    if cfg.max_samples and cfg.max_samples < len(dataset):
        dataset = Subset(dataset, range(cfg.max_samples))
    return dataset


# ------------------------------------------------------------------------------------ real pretraining sources
# Each reads ``<data-root>/<default folder>`` (docs/datasets.md), the same root the tasks use.


class ClipFrameDataset(Dataset):
    """VoxCeleb clips, one random frame per clip per epoch (docs/design.md, Pretraining).

    ``set_epoch(epoch)`` (called by the pretraining loop) redraws the frames from (seed, epoch): the seed is the
    one given, else the epoch seed the loop has just set (``torch.initial_seed()``), which is itself derived from
    (run seed, epoch); so a resumed run sees the same frames as an uninterrupted one.
    """

    def __init__(self, clips: SampleIndex, image_size: int, seed: int | None = None):
        self.clips, self.image_size, self.seed = clips, image_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        seed = self.seed if self.seed is not None else torch.initial_seed()
        self.epoch = epoch
        self.frames = ImageIndexDataset(epoch_frame_index(self.clips, seed, epoch), self.image_size)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, i: int) -> dict:
        return self.frames[i]


@SOURCES.register("voxceleb")
def voxceleb_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """VoxCeleb frames under ``<data-root>/VoxCeleb``: one sample per clip, a random frame of it per epoch."""
    return ClipFrameDataset(read_voxceleb(dataset_root("voxceleb", data_root))["train"], cfg.image_size)

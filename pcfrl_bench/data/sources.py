"""Pretraining data sources by name (``data.source``): each builds a Dataset of dict items with an "image"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset

from ..config import DataConfig
from ..registry import Registry
from .digits import digits_split
from .readers import SampleIndex, dataset_root, epoch_frame_index, read_dataset, read_voxceleb
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


def build_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The pretraining dataset of ``cfg.source``, capped to ``cfg.max_samples`` items when set."""
    dataset = SOURCES.get(cfg.source)(cfg, data_root)
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


def _reader_source(name: str, data_root: Path, split: str, image_size: int, **options) -> Dataset:
    return ImageIndexDataset(read_dataset(name, dataset_root(name, data_root), **options)[split], image_size)


@SOURCES.register("voxceleb")
def voxceleb_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """VoxCeleb frames under ``<data-root>/VoxCeleb``: one sample per clip, a random frame of it per epoch."""
    return ClipFrameDataset(read_voxceleb(dataset_root("voxceleb", data_root))["train"], cfg.image_size)


@SOURCES.register("imagefolder")
def imagefolder_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """Every image below ``<data-root>/images`` (any folder tree), resized to ``data.image_size``."""
    return _reader_source("imagefolder", data_root, "train", cfg.image_size)


@SOURCES.register("stl10-unlabeled")
def stl10_unlabeled_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The 100,000 unlabeled STL-10 images (``<data-root>/STL10``)."""
    return _reader_source("stl10", data_root, "unlabeled", cfg.image_size, splits=("unlabeled",))


@SOURCES.register("cifar10-train")
def cifar10_train_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The 50,000 CIFAR-10 training images (``<data-root>/CIFAR10``); labels kept, never used by the losses."""
    return _reader_source("cifar10", data_root, "train", cfg.image_size)


@SOURCES.register("300w-lp")
def headpose_train_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """300W-LP faces (``<data-root>/headpose``, the head-pose task's training set), cropped to the landmark box
    enlarged by 0.6 per side (FSA-Net); PCFRL Sec. 4.3.4 pretrains the head-pose regression task on it."""
    index = read_dataset("headpose", dataset_root("headpose", data_root))["train"]
    crop = "bbox" if index.paths is not None and "bbox" in index.targets else None
    return ImageIndexDataset(index, cfg.image_size, crop_key=crop, crop_margin=0.6)


@SOURCES.register("bu3dfe-train")
def bu3dfe_train_source(cfg: DataConfig, data_root: Path) -> Dataset:
    """The BU-3DFE training list's images (``<data-root>/BU-3DFE``); PCFRL Sec. 4.3.4 pretrains the pose
    classification task on BU-3DFE."""
    return _reader_source("bu3dfe", data_root, "train", cfg.image_size)

"""Real-dataset tasks: a dataset format (``data/readers/<format>.py``, named by the task YAML's ``dataset:``) plus
a protocol family (families.py). ``image-classification`` takes any format with train/test splits and a
``label`` target, so adding such a dataset needs no task class.

Each task reads its dataset from ``<data-root>/<default folder>`` (``task.subdir`` changes the folder below the
data root, ``task.root`` gives an absolute folder), once per task object, through ``data.task_data`` (the
format's reader, with its options from the task's ``Params`` in ``schema.tasks``). Splits are ``ImageIndexDataset``s at
the evaluation image size, in the reader's (deterministic) order, so cached features stay valid.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset

from ..catalog import Entry
from ..data.readers import DISFA_AUS, SampleIndex
from ..data.readers.check import undecodable_images
from ..data.readers.dataset import ImageIndexDataset
from ..data.task_data import TaskData
from ..errors import ConfigError
from ..schema.tasks import (Aflw2000Params, Bu3dfeParams, CalfwParams, CplfwParams, DataParams, DisfaParams,
                            Fer2013Params, LfwParams, RafdbParams)
from .base import TASKS, ClassificationTask
from .families import AUDetectionTask, HeadPoseTask, VerificationTask


class DatasetMixin:
    """Reads one real task's dataset through a :class:`TaskData` (once per task object); used with a family class."""

    entry: Entry
    params: Any
    data_root: Path

    @functools.cached_property
    def data(self) -> TaskData:
        """The task's dataset on disk (format, folder, index)."""
        if not self.entry.dataset:
            raise ConfigError(f"{self.entry.path}: task {self.entry.name!r} reads a dataset from disk; name its "
                              "format with 'dataset: <name>' (see `pcfrl-bench synth export --help` for the formats)")
        return TaskData(self.entry.dataset, self.params, self.data_root)

    def index(self) -> dict[str, SampleIndex]:
        """The reader's splits (read on first use, then kept)."""
        return self.data.index()

    def data_identity(self) -> dict[str, Any]:
        return self.data.identity()

    def availability(self) -> tuple[bool, str]:
        return self.data.availability()

    def image_dataset(self, split: str, image_size: int) -> Dataset:
        index = self.index()[split]
        return ImageIndexDataset(index, image_size, **self.data.format.image_options(index))

    def unreadable_images(self) -> dict[str, list[tuple[int, str]]]:
        found = {}
        for split in self.eval_splits:
            paths = self.index()[split].paths
            bad = undecodable_images(paths, label=f"decode {self.name}/{split}") if paths is not None else []
            if bad:
                found[split] = bad
        return found

    def drop_samples(self, drop: dict[str, list[int]]) -> None:
        self.data.drop(drop)

    def splits(self, image_size: int) -> dict[str, Dataset]:
        return {split: self.image_dataset(split, image_size) for split in self.eval_splits}

    eval_splits: ClassVar[tuple[str, ...]] = ("train", "test")


# ------------------------------------------------------------------------------------------------ classification


class RealClassificationTask(DatasetMixin, ClassificationTask):
    """Linear probe on the reader's train split, accuracy on its test split."""

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        classes = self.index()["train"].meta.get("classes")
        if classes:
            return len(classes)
        return int(max(int(s.targets["label"].max()) + 1 for s in self.index().values() if len(s)))


@TASKS.register("rafdb")
class RafdbTask(RealClassificationTask):
    """RAF-DB basic, 7 expressions (datasets.md §1)."""

    Params = RafdbParams


@TASKS.register("fer2013")
class Fer2013Task(RealClassificationTask):
    """FER-2013, 7 expressions; test = PrivateTest by default (datasets.md §2)."""

    Params = Fer2013Params


@TASKS.register("bu3dfe")
class Bu3dfeTask(RealClassificationTask):
    """BU-3DFE pose classes from list files (datasets.md §7)."""

    Params = Bu3dfeParams

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return int(self.index()["train"].meta["num_pose_classes"])


@TASKS.register("image-classification")
class ImageClassificationTask(RealClassificationTask):
    """Any dataset format with train/test splits and a 'label' target (STL-10, CIFAR-10, a plugin's dataset)."""

    Params = DataParams


# ------------------------------------------------------------------------------------------------ verification


class RealVerificationTask(DatasetMixin, VerificationTask):
    """Pairs and unique images from a verification reader (split "test")."""

    eval_splits = ("test",)

    def pair_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s = self.index()["test"]
        return s.pairs, s.same, s.fold


@TASKS.register("lfw")
class LfwTask(RealVerificationTask):
    """LFW View 2, the 6,000 pairs of pairs.txt in its 10 folds (datasets.md §3)."""

    Params = LfwParams


@TASKS.register("cplfw")
class CplfwTask(RealVerificationTask):
    """CPLFW, 6,000 pairs, folds rebuilt from the positive and negative blocks (datasets.md §4)."""

    Params = CplfwParams


@TASKS.register("calfw")
class CalfwTask(CplfwTask):
    """CALFW, as CPLFW with any non-zero label meaning 'same' (datasets.md §4)."""

    Params = CalfwParams


# ------------------------------------------------------------------------------------------------ AU detection


@TASKS.register("disfa")
class DisfaTask(DatasetMixin, AUDetectionTask):
    """DISFA, 8 AUs, positive if intensity > 1, JAA-Net 3-fold subject-exclusive split (datasets.md §5)."""

    aus = DISFA_AUS
    eval_splits = ("all",)
    Params = DisfaParams


# ------------------------------------------------------------------------------------------------ head pose


@TASKS.register("aflw2000")
class Aflw2000Task(DatasetMixin, HeadPoseTask):
    """Probe trained on 300W-LP, tested on AFLW2000-3D; ±99° filter on both (datasets.md §6)."""

    Params = Aflw2000Params

    def image_dataset(self, split: str, image_size: int) -> Dataset:
        index = self.index()[split]
        return ImageIndexDataset(index, image_size, **self.data.format.image_options(index, self.params.crop_margin))

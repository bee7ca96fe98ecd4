"""Real-dataset tasks: a reader (pcfrl_bench/data/readers) plus a protocol family (families.py).

Each task reads its dataset from ``<data-root>/<default folder>`` (``task.subdir`` changes the folder below the
data root, ``task.root`` gives an absolute folder), once per task object. Splits are ``ImageIndexDataset``s at
the evaluation image size, in the reader's (deterministic) order, so cached features stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch.utils.data import Dataset

from ..data.readers import DEFAULT_SUBDIRS, DISFA_AUS, ImageIndexDataset, SampleIndex, read_dataset
from ..data.readers.check import undecodable_images
from ..errors import PcfrlError
from .base import TASKS, ClassificationTask
from .families import AUDetectionTask, HeadPoseTask, VerificationTask


@dataclass
class DataParams:
    """Where a task's dataset lives (shared by every real task)."""

    root: str = ""  # absolute dataset folder; overrides the data root and subdir
    subdir: str = ""  # folder below --data-root; "" = the dataset's default folder (docs/datasets.md)


def _opt(value: str) -> str | None:
    """An empty string option means "the reader's default"."""
    return value or None


class DatasetMixin:
    """Locates, reads (once) and checks one reader's dataset; used with a family class."""

    dataset: ClassVar[str] = ""  # reader name in READERS / DEFAULT_SUBDIRS
    params: Any
    data_root: Path

    def dataset_dir(self) -> Path:
        """``task.root``, else ``<data-root>/<task.subdir or the default folder>``."""
        if getattr(self.params, "root", ""):
            return Path(self.params.root).expanduser()
        return Path(self.data_root) / (getattr(self.params, "subdir", "") or DEFAULT_SUBDIRS[self.dataset])

    def reader_options(self) -> dict[str, Any]:
        """Keyword options of the reader, from the task's Params."""
        return {}

    def check_options(self) -> dict[str, Any]:
        """Reader options for ``check_dataset`` (which reports problems instead of raising)."""
        return self.reader_options()

    def index(self) -> dict[str, SampleIndex]:
        """The reader's splits (read on first use, then kept)."""
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = self.__dict__["_index"] = read_dataset(self.dataset, self.dataset_dir(), **self.reader_options())
        return cached

    def data_identity(self) -> dict[str, Any]:
        """Dataset folder and split sizes: part of the feature cache key, so another data root never reuses
        features of this one."""
        sizes = {k: [len(v), 0 if v.pairs is None else len(v.pairs)] for k, v in self.index().items()}
        return {"dir": str(self.dataset_dir().resolve()), "sizes": sizes}

    def availability(self) -> tuple[bool, str]:
        try:
            self.index()
        except PcfrlError as err:  # DatasetLayoutError: the path and the expected layout
            return False, str(err)
        except OSError as err:
            return False, f"cannot read {self.dataset_dir()}: {err}"
        return True, str(self.dataset_dir())

    def image_dataset(self, split: str, image_size: int) -> Dataset:
        return ImageIndexDataset(self.index()[split], image_size)

    def unreadable_images(self) -> dict[str, list[tuple[int, str]]]:
        found = {}
        for split in self.eval_splits:
            paths = self.index()[split].paths
            bad = undecodable_images(paths) if paths is not None else []
            if bad:
                found[split] = bad
        return found

    def drop_samples(self, drop: dict[str, list[int]]) -> None:
        index = self.index()
        self.__dict__["_index"] = {split: s.without(drop[split]) if drop.get(split) else s
                                   for split, s in index.items()}

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

    dataset = "rafdb"

    @dataclass
    class Params(DataParams):
        image_folder: str = "aligned"  # "original" reads Image/original/

    def reader_options(self) -> dict[str, Any]:
        return {"image_folder": self.params.image_folder}


@TASKS.register("fer2013")
class Fer2013Task(RealClassificationTask):
    """FER-2013, 7 expressions; test = PrivateTest by default (datasets.md §2)."""

    dataset = "fer2013"

    @dataclass
    class Params(DataParams):
        test_usage: str = "PrivateTest"  # PublicTest, PrivateTest or both ("PublicTest+PrivateTest")
        variant: str = "auto"  # auto, csv, icml, folders

    def reader_options(self) -> dict[str, Any]:
        return {"test_usage": self.params.test_usage, "variant": self.params.variant}


@TASKS.register("bu3dfe")
class Bu3dfeTask(RealClassificationTask):
    """BU-3DFE pose classes from list files (datasets.md §7)."""

    dataset = "bu3dfe"

    @dataclass
    class Params(DataParams):
        train_list: str = "train.txt"
        test_list: str = "test.txt"
        image_root: str = ""
        num_pose_classes: int = 0  # 0 = one more than the largest pose id in the lists

    def reader_options(self) -> dict[str, Any]:
        return {"train_list": self.params.train_list, "test_list": self.params.test_list,
                "image_root": _opt(self.params.image_root), "num_pose_classes": self.params.num_pose_classes or None}

    @property
    def num_classes(self) -> int:  # type: ignore[override]
        return int(self.index()["train"].meta["num_pose_classes"])


@TASKS.register("stl10")
class Stl10Task(RealClassificationTask):
    """STL-10 labelled train (5,000) / test (8,000), 10 classes (datasets.md §8)."""

    dataset = "stl10"
    Params = DataParams

    def reader_options(self) -> dict[str, Any]:
        return {"splits": ("train", "test")}


@TASKS.register("cifar10")
class Cifar10Task(RealClassificationTask):
    """CIFAR-10 train (50,000) / test (10,000), 10 classes (datasets.md §8)."""

    dataset = "cifar10"
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

    dataset = "lfw"

    @dataclass
    class Params(DataParams):
        image_dir: str = ""  # "" = the first of lfw-deepfunneled/, lfw/, lfw_funneled/ that exists
        pairs_file: str = "pairs.txt"

    def reader_options(self) -> dict[str, Any]:
        return {"image_dir": _opt(self.params.image_dir), "pairs_file": self.params.pairs_file}


@TASKS.register("cplfw")
class CplfwTask(RealVerificationTask):
    """CPLFW, 6,000 pairs, folds rebuilt from the positive and negative blocks (datasets.md §4)."""

    dataset = "cplfw"

    @dataclass
    class Params(DataParams):
        pairs_file: str = "pairs_CPLFW.txt"
        image_dir: str = ""  # "" = images/ (or "aligned images/")
        n_folds: int = 10

    def reader_options(self) -> dict[str, Any]:
        return {"pairs_file": self.params.pairs_file, "image_dir": _opt(self.params.image_dir),
                "n_folds": self.params.n_folds}


@TASKS.register("calfw")
class CalfwTask(CplfwTask):
    """CALFW, as CPLFW with any non-zero label meaning 'same' (datasets.md §4)."""

    dataset = "calfw"

    @dataclass
    class Params(DataParams):
        pairs_file: str = "pairs_CALFW.txt"
        image_dir: str = ""
        n_folds: int = 10


# ------------------------------------------------------------------------------------------------ AU detection


@TASKS.register("disfa")
class DisfaTask(DatasetMixin, AUDetectionTask):
    """DISFA, 8 AUs, positive if intensity > 1, JAA-Net 3-fold subject-exclusive split (datasets.md §5)."""

    dataset = "disfa"
    aus = DISFA_AUS
    eval_splits = ("all",)

    @dataclass
    class Params(DataParams):
        frames_root: str = ""  # "" = <dataset folder>/frames
        frame_format: str = "{t}"  # frame t of subject S is <frames_root>/S/<frame_format><ext>, t 0-based
        threshold: int = 1  # positive if intensity > threshold (PCFRL Sec. 4.2.1)
        missing_frames: str = "error"  # or "skip" frames without an image
        n_folds: int = 3

    def reader_options(self) -> dict[str, Any]:
        frames = _opt(self.params.frames_root)
        return {"frames_root": Path(frames).expanduser() if frames else None, "aus": DISFA_AUS,
                "threshold": self.params.threshold, "frame_format": self.params.frame_format,
                "missing_frames": self.params.missing_frames}

    def check_options(self) -> dict[str, Any]:
        return {**self.reader_options(), "missing_frames": "skip"}  # count missing frames as a problem


# ------------------------------------------------------------------------------------------------ head pose


@TASKS.register("aflw2000")
class Aflw2000Task(DatasetMixin, HeadPoseTask):
    """Probe trained on 300W-LP, tested on AFLW2000-3D; ±99° filter on both (datasets.md §6)."""

    dataset = "headpose"

    @dataclass
    class Params(DataParams):
        train: str = "300W_LP"
        test: str = "AFLW2000"
        limit: float = 99.0
        train_list: str = ""
        test_list: str = ""
        crop_margin: float = 0.6  # .jpg/.mat layout: landmark box enlarged by this share per side (FSA-Net: 0.6)

    def reader_options(self) -> dict[str, Any]:
        p = self.params
        return {"train": p.train, "test": p.test, "limit": p.limit, "train_list": _opt(p.train_list),
                "test_list": _opt(p.test_list)}

    def image_dataset(self, split: str, image_size: int) -> Dataset:
        index = self.index()[split]
        crop = "bbox" if index.paths is not None and "bbox" in index.targets else None  # npz crops are cropped
        return ImageIndexDataset(index, image_size, crop_key=crop, crop_margin=self.params.crop_margin)

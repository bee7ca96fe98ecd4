"""The task interface: evaluation data plus a protocol that turns frozen features into metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..catalog import Entry
from ..config import DataConfig, EmptyParams, EvalConfig
from ..errors import ConfigError
from ..evaluation.features import FeatureSet
from ..evaluation.probes import ProbeResult, accuracy, train_probe
from ..evaluation.protocols import majority_class_accuracy
from ..registry import Registry
from ..schema.tasks import BUILT_IN


@dataclass
class EvalResult:
    """Metrics at the final probe epoch, and the best test value over epochs (marked as such)."""

    metrics: dict[str, float]
    best_over_epochs: dict[str, float] = field(default_factory=dict)
    best_epoch: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    trivial: dict[str, float] = field(default_factory=dict)  # the metric of a feature-free baseline (the floor)

    @classmethod
    def from_probe(cls, result: ProbeResult, counts: dict[str, int], trivial: dict[str, float]) -> "EvalResult":
        return cls(result.final, result.best, result.best_epoch, counts, trivial)


@dataclass
class Supervision:
    """What trains a task's ``supervised`` ceiling: labelled images, the label key, the outputs and the loss."""

    dataset: Dataset
    target: str
    outputs: int
    loss: str  # a key of methods.supervised.SUPERVISED_LOSSES


class Task:
    """Base class. Subclasses give ``splits`` (evaluation data) and ``evaluate`` (the protocol); ``Params`` and
    ``has_supervision`` agree with the implementation's entry in ``schema.tasks.TASK_SCHEMAS``."""

    Params: ClassVar[type] = EmptyParams
    protocol: ClassVar[str] = ""

    def __init__(self, entry: Entry, params: Any, data_root: Path, data: DataConfig | None = None):
        self.entry = entry
        self.params = params
        self.data_root = Path(data_root)
        self.data_config = data or DataConfig()  # the run's data section (the synthetic world's look)

    @property
    def name(self) -> str:
        return self.entry.name

    def availability(self) -> tuple[bool, str]:
        """(whether the data is present, where it is or what is missing)."""
        return True, BUILT_IN

    def data_identity(self) -> dict[str, Any]:
        """What identifies the data on disk (folder, sizes) for the feature cache key; {} for built-in data."""
        return {}

    def splits(self, image_size: int) -> dict[str, Dataset]:
        """Evaluation datasets by split; items are dicts with an "image" and the targets."""
        raise NotImplementedError

    def unreadable_images(self) -> dict[str, list[tuple[int, str]]]:
        """Per evaluation split, (position, 'path (error)') of the image files that cannot be decoded; every
        file is decoded once. Built-in data has none."""
        return {}

    def drop_samples(self, drop: dict[str, list[int]]) -> None:
        """Leave the samples at the given positions out of the evaluation splits (and pairs that use them)."""
        if any(drop.values()):
            raise NotImplementedError(f"task {self.name} cannot leave samples out")

    def evaluate(self, features: dict[str, FeatureSet], cfg: EvalConfig, seed: int, device: torch.device) -> EvalResult:
        raise NotImplementedError

    def supervision(self, data: DataConfig) -> Supervision:
        """Labelled training data for the ``supervised`` ceiling, at the pretraining size ``data.image_size``."""
        raise ConfigError(f"task {self.name!r} has no labelled training data for the supervised ceiling")

    @classmethod
    def has_supervision(cls) -> bool:
        """Whether the task gives labelled training data (overrides ``supervision``); known without any data."""
        return cls.supervision is not Task.supervision


class ClassificationTask(Task):
    """Linear probe on the ``train`` split's features, accuracy on the ``test`` split (cross-entropy)."""

    protocol = "classification"
    num_classes: int = 0

    def evaluate(self, features: dict[str, FeatureSet], cfg: EvalConfig, seed: int, device: torch.device) -> EvalResult:
        train, test = features["train"].subset(cfg.max_train), features["test"].subset(cfg.max_test)
        result = train_probe(train.features, train.targets["label"], test.features, test.targets["label"],
                             self.num_classes, cfg.probe, F.cross_entropy, accuracy, "accuracy", True, seed, device)
        return EvalResult.from_probe(result, {"train": len(train.features), "test": len(test.features)},
                                     {"accuracy": majority_class_accuracy(train.targets["label"], test.targets["label"])})

    def supervision(self, data: DataConfig) -> Supervision:
        """The probe's own training split and labels (cross-entropy over the task's classes)."""
        return Supervision(self.splits(data.image_size)["train"], "label", self.num_classes, "cross_entropy")


TASKS: Registry[type[Task]] = Registry("task implementation")

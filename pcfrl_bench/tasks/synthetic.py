"""Synthetic-world tasks: the real tasks' protocols on rendered faces whose factors are known.

Evaluation identities are disjoint from the pretraining identities (``role="eval"`` in the world).
Each task renders its data once per object and split, lazily, so a feature-cache hit renders nothing.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from ..config import DataConfig
from ..data.sources import synthetic_source
from ..data.synthetic import POSECLS_PITCHES, POSECLS_YAWS, WorldStyle, synthetic_task_data
from ..data.tensors import LazyDataset, TensorImageDataset
from ..progress import stage
from ..schema.tasks import (
    SYNTHETIC_WORLD, SyntheticExpressionParams, SyntheticTaskParams, SyntheticVerificationParams,
)
from .base import TASKS, ClassificationTask, Supervision
from .families import AUDetectionTask, HeadPoseTask, VerificationTask


class SyntheticData:
    """Mixin: rendered data of one synthetic task kind, per split, built lazily and kept."""

    kind: ClassVar[str] = ""
    Params = SyntheticTaskParams

    def availability(self) -> tuple[bool, str]:
        return True, SYNTHETIC_WORLD

    @property
    def style(self) -> WorldStyle:
        """The world's look (``data.synthetic``): the task's faces are rendered as the pretraining clips are."""
        return WorldStyle.of(self.data_config.synthetic)

    def data_identity(self) -> dict[str, Any]:
        changes = self.style.changes()
        return {"synthetic": self.kind, **({"style": changes} if changes else {})}

    def rendered(self, split: str, image_size: int) -> dict[str, torch.Tensor]:
        cache = self.__dict__.setdefault("_rendered", {})
        if (split, image_size) not in cache:
            n = self.params.n_test if split == "test" else self.params.n_train
            with stage(f"render {self.name}/{split} ({n} at {image_size} px)"):
                cache[(split, image_size)] = synthetic_task_data(self.kind, split, image_size, n, self.params.seed,
                                                                 style=self.style, **self.render_options())
        return cache[(split, image_size)]

    def render_options(self) -> dict[str, Any]:
        """Extra keyword arguments of ``synthetic_task_data`` (task-specific factors)."""
        return {}

    def lazy(self, split: str, image_size: int, n: int, targets: dict[str, str]) -> Dataset:
        """A lazy TensorImageDataset of ``split``; ``targets`` maps dataset keys to rendered keys."""
        def build() -> Dataset:
            data = self.rendered(split, image_size)
            return TensorImageDataset(data["images"], {k: data[v] for k, v in targets.items()})
        return LazyDataset(n, build)


class ExpressionScaled:
    """Mixin of the expression tasks: their faces are rendered with ``task.expression_scale`` x AU intensities."""

    Params = SyntheticExpressionParams

    def render_options(self) -> dict[str, Any]:
        return {"expression_scale": self.params.expression_scale}


@TASKS.register("synth-fer")
class SyntheticExpressionTask(ExpressionScaled, SyntheticData, ClassificationTask):
    """7 basic emotions (RAF-DB order), linear probe accuracy (FER protocol)."""

    kind = "fer"
    num_classes = 7

    def splits(self, image_size: int) -> dict[str, Dataset]:
        return {s: self.lazy(s, image_size, n, {"label": "labels"})
                for s, n in (("train", self.params.n_train), ("test", self.params.n_test))}


@TASKS.register("synth-posecls")
class SyntheticPoseClassTask(SyntheticData, ClassificationTask):
    """Discrete yaw x pitch pose classes, linear probe accuracy (BU-3DFE-like pose classification)."""

    kind = "posecls"
    num_classes = len(POSECLS_YAWS) * len(POSECLS_PITCHES)

    splits = SyntheticExpressionTask.splits


@TASKS.register("synth-hpe")
class SyntheticHeadPoseTask(SyntheticData, HeadPoseTask):
    """Yaw/pitch/roll regression with a BN+linear probe, MAE per angle and mean (AFLW2000 protocol)."""

    kind = "hpe"

    def splits(self, image_size: int) -> dict[str, Dataset]:
        return {s: self.lazy(s, image_size, n, {"angles": "angles"})
                for s, n in (("train", self.params.n_train), ("test", self.params.n_test))}


@TASKS.register("synth-au")
class SyntheticActionUnitTask(ExpressionScaled, SyntheticData, AUDetectionTask):
    """AUs 1, 2, 4, 6, 9, 12, 25, 26 (positive if intensity > 1), F1 per AU, 3-fold subject-exclusive."""

    kind = "au"

    def splits(self, image_size: int) -> dict[str, Dataset]:
        def build() -> Dataset:
            data = self.rendered("all", image_size)
            return TensorImageDataset(data["images"], {"aus": (data["aus"] > 1).float(),  # DISFA: intensity > 1
                                                       "subject": data["subjects"]})
        return {self.au_split: LazyDataset(self.params.n_train, build)}

    def supervision(self, data: DataConfig) -> Supervision:
        """n_train faces of 12 people outside the evaluation pool, AU occurrence (intensity > 1), BCE; rendered
        only when pretraining reads it (a reused checkpoint renders nothing)."""
        def build() -> Dataset:
            rendered = self.rendered("supervised", data.image_size)
            return TensorImageDataset(rendered["images"], {"aus": (rendered["aus"] > 1).float()})
        return Supervision(LazyDataset(self.params.n_train, build), "aus", len(self.aus), "bce")


@TASKS.register("synth-fr")
class SyntheticVerificationTask(SyntheticData, VerificationTask):
    """Cross-pose verification pairs (|yaw difference| >= 30 deg), 10-fold accuracy (CPLFW protocol)."""

    kind = "fr"
    Params = SyntheticVerificationParams

    def splits(self, image_size: int) -> dict[str, Dataset]:
        self._image_size = image_size
        data = self.rendered("test", image_size)
        return {"test": TensorImageDataset(data["images"], {"index": torch.arange(len(data["images"]))})}

    def render_options(self) -> dict[str, Any]:
        return {"train_identities": self.params.train_identities}

    def supervision(self, data: DataConfig) -> Supervision:
        """Identity classification of other people than the verification pairs show: ``task.supervision`` "clips",
        4 frames of every synthetic pretraining clip (``data.synthetic``) per epoch; "faces", ``n_train`` faces of
        ``task.train_identities`` people with pose and nuisance drawn per image (rendered when pretraining reads
        them)."""
        if self.params.supervision == "clips":
            clips = synthetic_source(data, self.data_root, draws=4)
            return Supervision(clips, "identity", data.synthetic.identities, "cross_entropy")
        faces = self.lazy("supervised", data.image_size, self.params.n_train, {"identity": "labels"})
        return Supervision(faces, "identity", self.params.train_identities, "cross_entropy")

    def pair_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        data = self.rendered("test", self._image_size)
        return data["pairs"].numpy(), data["same"].numpy().astype(bool), data["fold"].numpy()

"""The real tasks' datasets on disk, without torch: which reader each task uses, the reader's options (from the
task's ``Params``, ``schema.tasks``), the dataset folder, and the index, read once.

The real tasks (``tasks/real.py``) evaluate on a :class:`TaskData`; ``pcfrl-bench list`` reports every task's
availability through :func:`task_availability` without building a task (or importing torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import PcfrlError
from ..schema.tasks import TASK_SCHEMAS
from .readers import DEFAULT_SUBDIRS, DISFA_AUS, SampleIndex, read_dataset


def _opt(value: str) -> str | None:
    """An empty string option means "the reader's default"."""
    return value or None


def _no_options(params: Any) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class TaskReader:
    """How a real task reads its dataset: the reader and the reader's keyword options from the task's Params."""

    name: str  # a key of readers.READERS and DEFAULT_SUBDIRS
    options: Callable[[Any], dict[str, Any]] = _no_options
    check_options: dict[str, Any] = field(default_factory=dict)  # replaced options for ``data check``


def _pair_list_options(p: Any) -> dict[str, Any]:
    return {"pairs_file": p.pairs_file, "image_dir": _opt(p.image_dir), "n_folds": p.n_folds}


def _disfa_options(p: Any) -> dict[str, Any]:
    frames = _opt(p.frames_root)
    return {"frames_root": Path(frames).expanduser() if frames else None, "aus": DISFA_AUS, "threshold": p.threshold,
            "frame_format": p.frame_format, "missing_frames": p.missing_frames}


# by task implementation (the real tasks of tasks/real.py)
TASK_READERS: dict[str, TaskReader] = {
    "rafdb": TaskReader("rafdb", lambda p: {"image_folder": p.image_folder}),
    "fer2013": TaskReader("fer2013", lambda p: {"test_usage": p.test_usage, "variant": p.variant}),
    "bu3dfe": TaskReader("bu3dfe", lambda p: {"train_list": p.train_list, "test_list": p.test_list,
                                              "image_root": _opt(p.image_root),
                                              "num_pose_classes": p.num_pose_classes or None}),
    "stl10": TaskReader("stl10", lambda p: {"splits": ("train", "test")}),
    "cifar10": TaskReader("cifar10"),
    "lfw": TaskReader("lfw", lambda p: {"image_dir": _opt(p.image_dir), "pairs_file": p.pairs_file}),
    "cplfw": TaskReader("cplfw", _pair_list_options),
    "calfw": TaskReader("calfw", _pair_list_options),
    "disfa": TaskReader("disfa", _disfa_options, {"missing_frames": "skip"}),  # data check counts missing frames
    "aflw2000": TaskReader("headpose", lambda p: {"train": p.train, "test": p.test, "limit": p.limit,
                                                  "train_list": _opt(p.train_list), "test_list": _opt(p.test_list)}),
}


class TaskData:
    """One real task's dataset: its folder, its reader's options and its index (read on first use, then kept)."""

    def __init__(self, implementation: str, params: Any, data_root: Path):
        self.reader = TASK_READERS[implementation]
        self.params = params
        self.data_root = Path(data_root)
        self._index: dict[str, SampleIndex] | None = None

    def folder(self) -> Path:
        """``task.root``, else ``<data-root>/<task.subdir or the default folder>``."""
        if self.params.root:
            return Path(self.params.root).expanduser()
        return self.data_root / (self.params.subdir or DEFAULT_SUBDIRS[self.reader.name])

    def options(self) -> dict[str, Any]:
        """Keyword options of the reader."""
        return self.reader.options(self.params)

    def check_options(self) -> dict[str, Any]:
        """Reader options for ``check_dataset`` (which reports problems instead of raising)."""
        return {**self.options(), **self.reader.check_options}

    def index(self) -> dict[str, SampleIndex]:
        """The reader's splits."""
        if self._index is None:
            self._index = read_dataset(self.reader.name, self.folder(), **self.options())
        return self._index

    def identity(self) -> dict[str, Any]:
        """Dataset folder and split sizes: part of the feature cache key, so another data root never reuses
        features of this one."""
        sizes = {k: [len(v), 0 if v.pairs is None else len(v.pairs)] for k, v in self.index().items()}
        return {"dir": str(self.folder().resolve()), "sizes": sizes}

    def availability(self) -> tuple[bool, str]:
        """(whether the dataset reads, its folder or what is missing)."""
        try:
            self.index()
        except PcfrlError as err:  # DatasetLayoutError: the path and the expected layout
            return False, str(err)
        except OSError as err:
            return False, f"cannot read {self.folder()}: {err}"
        return True, str(self.folder())

    def drop(self, drop: dict[str, list[int]]) -> None:
        """Leave the samples at the given positions out of their splits (and pairs that use them)."""
        self._index = {split: s.without(drop[split]) if drop.get(split) else s for split, s in self.index().items()}


def task_availability(implementation: str, params: Any, data_root: Path) -> tuple[bool, str]:
    """(whether a task's data is present, where it is or what is missing), as its ``Task.availability`` says,
    without building the task: real tasks read their index, the others have built-in data."""
    if implementation in TASK_READERS:
        return TaskData(implementation, params, data_root).availability()
    return True, TASK_SCHEMAS.get(implementation).built_in

"""The real tasks' datasets on disk, without torch: the format the task YAML names (``dataset:``), the reader's
options from the task's ``Params`` (``schema.tasks``), the dataset folder, and the index, read once.

The real tasks (``tasks/real.py``) evaluate on a :class:`TaskData`; ``pcfrl-bench list`` reports every task's
availability through :func:`task_availability` without building a task (or importing torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import PcfrlError
from ..schema.tasks import TASK_SCHEMAS
from .readers import SampleIndex, dataset_format


class TaskData:
    """One real task's dataset: its folder, its reader's options and its index (read on first use, then kept)."""

    def __init__(self, dataset: str, params: Any, data_root: Path):
        self.format = dataset_format(dataset)
        self.params = params
        self.data_root = Path(data_root)
        self._index: dict[str, SampleIndex] | None = None

    def folder(self) -> Path:
        """``task.root``, else ``<data-root>/<task.subdir or the default folder>``."""
        if self.params.root:
            return Path(self.params.root).expanduser()
        return self.data_root / (self.params.subdir or self.format.folder)

    def options(self) -> dict[str, Any]:
        """Keyword options of the reader."""
        return self.format.options(self.params)

    def index(self) -> dict[str, SampleIndex]:
        """The reader's splits."""
        if self._index is None:
            self._index = self.format.read(self.folder(), **self.options())
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


def task_availability(entry: Any, params: Any, data_root: Path) -> tuple[bool, str]:
    """(whether a task's data is present, where it is or what is missing), as its ``Task.availability`` says,
    without building the task: a task whose YAML names a ``dataset`` reads its index, the others have built-in
    data. ``entry``: the task's ``catalog.Entry``."""
    if entry.dataset:
        return TaskData(entry.dataset, params, data_root).availability()
    return True, TASK_SCHEMAS.get(entry.implementation).built_in

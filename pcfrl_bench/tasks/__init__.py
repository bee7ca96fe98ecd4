"""Task implementations; importing this package registers them in TASKS."""

from pathlib import Path

from .. import catalog
from ..resolution import task_params
from . import digits  # noqa: F401  (registers "digits")
from . import real  # noqa: F401  (registers the real-dataset tasks)
from . import synthetic  # noqa: F401  (registers the synth-* tasks)
from .base import TASKS, ClassificationTask, EvalResult, Task
from .families import AUDetectionTask, HeadPoseTask, VerificationTask


def default_task(name: str, data_root: Path, overrides: tuple[str, ...] | list[str] = ()) -> Task:
    """A task with its YAML defaults and ``task.*`` overrides (for listing and data checks: no method)."""
    entry = catalog.entry("task", name)
    return TASKS.get(entry.implementation)(entry, task_params(entry, overrides), data_root)


__all__ = ["TASKS", "default_task", "AUDetectionTask", "ClassificationTask", "EvalResult", "HeadPoseTask", "Task",
           "VerificationTask"]

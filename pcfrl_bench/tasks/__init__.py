"""Task implementations; importing this package registers them in TASKS."""

from pathlib import Path

from .. import catalog
from ..config import EmptyParams, resolve_config
from . import digits  # noqa: F401  (registers "digits")
from . import real  # noqa: F401  (registers the real-dataset tasks)
from . import synthetic  # noqa: F401  (registers the synth-* tasks)
from .base import TASKS, ClassificationTask, EvalResult, Task
from .families import AUDetectionTask, HeadPoseTask, VerificationTask



def default_task(name: str, data_root: Path) -> Task:
    """A task with its YAML defaults (for listing and data checks, where no method is involved)."""
    entry = catalog.entry("task", name)
    cls = TASKS.get(entry.implementation)
    params = resolve_config([entry.defaults], EmptyParams, cls.Params).task
    return cls(entry, params, data_root)


__all__ = ["TASKS", "default_task", "AUDetectionTask", "ClassificationTask", "EvalResult", "HeadPoseTask", "Task",
           "VerificationTask"]

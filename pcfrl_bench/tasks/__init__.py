"""Task implementations; importing this package registers them in TASKS."""

from pathlib import Path

from .. import catalog
from ..config import EmptyParams, parse_override, resolve_config
from ..errors import ConfigError
from . import digits  # noqa: F401  (registers "digits")
from . import real  # noqa: F401  (registers the real-dataset tasks)
from . import synthetic  # noqa: F401  (registers the synth-* tasks)
from .base import TASKS, ClassificationTask, EvalResult, Task
from .families import AUDetectionTask, HeadPoseTask, VerificationTask



def default_task(name: str, data_root: Path, overrides: tuple[str, ...] | list[str] = ()) -> Task:
    """A task with its YAML defaults and ``task.*`` overrides (for listing and data checks: no method)."""
    entry = catalog.entry("task", name)
    cls = TASKS.get(entry.implementation)
    layers = [parse_override(o) for o in overrides]
    other = sorted({key for layer in layers for key in layer} - {"task"})
    if other:
        raise ConfigError(f"only task.* keys apply here (no method, model or training is involved), got {other}")
    params = resolve_config([entry.defaults, *layers], EmptyParams, cls.Params).task
    return cls(entry, params, data_root)


__all__ = ["TASKS", "default_task", "AUDetectionTask", "ClassificationTask", "EvalResult", "HeadPoseTask", "Task",
           "VerificationTask"]

"""Task implementations; importing this package registers them in TASKS."""

from . import digits  # noqa: F401  (registers "digits")
from .base import TASKS, ClassificationTask, EvalResult, Task

__all__ = ["TASKS", "ClassificationTask", "EvalResult", "Task"]

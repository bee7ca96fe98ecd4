"""Task implementations; importing this package registers them in TASKS."""

from . import digits  # noqa: F401  (registers "digits")
from . import real  # noqa: F401  (registers the real-dataset tasks)
from . import synthetic  # noqa: F401  (registers the synth-* tasks)
from .base import TASKS, ClassificationTask, EvalResult, Task
from .families import AUDetectionTask, HeadPoseTask, VerificationTask

__all__ = ["TASKS", "AUDetectionTask", "ClassificationTask", "EvalResult", "HeadPoseTask", "Task",
           "VerificationTask"]

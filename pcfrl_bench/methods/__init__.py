"""Method implementations; importing this package registers them in METHODS."""

from . import frozen, moco, pcl, simclr, supervised  # noqa: F401  (register every implementation)
from .base import METHODS, Method, StepOutput

__all__ = ["METHODS", "Method", "StepOutput"]

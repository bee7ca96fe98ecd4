"""Method implementations; importing this package registers them in METHODS."""

from . import moco, pcl, simclr  # noqa: F401  (register "moco", "pcl", "pcfrl", "simclr")
from .base import METHODS, Method, StepOutput

__all__ = ["METHODS", "Method", "StepOutput"]

"""Method implementations; importing this package registers them in METHODS."""

from . import simclr  # noqa: F401  (registers "simclr")
from .base import METHODS, Method, StepOutput

__all__ = ["METHODS", "Method", "StepOutput"]

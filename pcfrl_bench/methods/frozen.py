"""The floors: a backbone evaluated as built, with no pretraining objective (``random-init``, ``raw-pixels``)."""

from __future__ import annotations

from torch import Tensor

from ..errors import ConfigError
from .base import METHODS, Method, StepOutput


@METHODS.register("frozen")
class Frozen(Method):
    """No loss: its registry entries pin ``pretrain.epochs: 0``, so the initial weights are the checkpoint."""

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        raise ConfigError("the 'frozen' implementation has no training objective; keep pretrain.epochs at 0")

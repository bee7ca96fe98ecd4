"""The ceiling: the same trunk trained end-to-end on a task's training labels (the paper's "fully supervised" rows),
then frozen and evaluated by the task's protocol like every other method.

The task says what supervises it (``Task.supervision``): a label key in its training data, the number of
outputs and the loss; the runner fills ``target``, ``outputs`` and ``loss`` before the model is built.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from ..schema.methods import SupervisedParams
from .base import METHODS, Method, StepOutput

SUPERVISED_LOSSES = {
    "cross_entropy": lambda out, y: F.cross_entropy(out, y.long()),  # classification (FER, pose classes, identity)
    "l1": lambda out, y: F.l1_loss(out, y.float()),  # head-pose angles in degrees (the HPE probe's loss)
    "bce": lambda out, y: F.binary_cross_entropy_with_logits(out, y.float()),  # AU occurrence
}


@METHODS.register("supervised")
class Supervised(Method):
    Params = SupervisedParams

    def __init__(self, params: SupervisedParams, backbone: nn.Module, feature_dim: int, image_size: int):
        super().__init__(params, backbone, feature_dim, image_size)
        if not params.target or params.outputs < 1:
            raise ConfigError("supervised: method.target and method.outputs are set from the task; "
                              f"got target={params.target!r}, outputs={params.outputs}")
        linear = nn.Linear(feature_dim, params.outputs)
        self.head = nn.Sequential(nn.BatchNorm1d(feature_dim), linear) if params.head == "bn_linear" else linear

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        p = self.params
        if p.target not in batch:
            raise ConfigError(f"supervised: the training data has no {p.target!r} labels (keys: {sorted(batch)})")
        out = self.head(self.backbone(batch["image"]).flatten(1))
        loss = SUPERVISED_LOSSES[p.loss](out, batch[p.target])
        return StepOutput(loss, {"loss": loss.detach()})

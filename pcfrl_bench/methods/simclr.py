"""SimCLR (Chen et al. 2020): two augmented views, projection head, NT-Xent."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from pytorch_metric_learning.losses import NTXentLoss
from torch import Tensor

from ..data.views import AugmentParams, simclr_view
from ..models.heads import mlp_head
from .base import METHODS, Method, StepOutput


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent over 2B views (positives: the two views of an image), via pytorch-metric-learning."""
    b = z1.shape[0]
    labels = torch.arange(b, device=z1.device).repeat(2)
    return NTXentLoss(temperature=temperature)(torch.cat([z1, z2]), labels)


@METHODS.register("simclr")
class SimCLR(Method):
    @dataclass
    class Params:
        temperature: float = 0.5
        proj_hidden_dim: int = 2048
        proj_dim: int = 128
        augment: AugmentParams = field(default_factory=AugmentParams)

    def __init__(self, params: Params, backbone, feature_dim: int, image_size: int):
        super().__init__(params, backbone, feature_dim, image_size)
        self.projector = mlp_head(feature_dim, params.proj_hidden_dim, params.proj_dim)

    def embed(self, x: Tensor) -> Tensor:
        return self.projector(self.backbone(x).flatten(1))

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        x = batch["image"]
        v1, v2 = simclr_view(x, self.params.augment), simclr_view(x, self.params.augment)
        z = self.embed(torch.cat([v1, v2]))
        loss = nt_xent(*z.chunk(2), self.params.temperature)
        return StepOutput(loss, {"loss": loss.detach()})

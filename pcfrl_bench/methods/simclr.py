"""SimCLR (Chen et al. 2020): two augmented views, projection head, NT-Xent.

Optional NPA / cosine false-negative calibration (PCFRL Table 5, ``simclr-calib-*``): off by default.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.views import simclr_view
from ..distributed import gather_no_grad, gather_with_grad
from ..models.heads import mlp_head
from ..precision import fp32
from ..schema.methods import SimCLRParams
from .base import METHODS, Method, StepOutput
from .calibrated import Branch, branch_loss, calibration_logs, pair_truth, precision_from_means, view_labels


@fp32
def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """NT-Xent over 2B views (positives: the two views of an image), via pytorch-metric-learning."""
    b = z1.shape[0]
    labels = torch.arange(b, device=z1.device).repeat(2)
    from pytorch_metric_learning.losses import NTXentLoss  # imported when used: it loads slowly

    return NTXentLoss(temperature=temperature)(torch.cat([z1, z2]), labels)


@METHODS.register("simclr")
class SimCLR(Method):
    Params = SimCLRParams

    def __init__(self, params: SimCLRParams, backbone, feature_dim: int, image_size: int):
        super().__init__(params, backbone, feature_dim, image_size)
        self.projector = mlp_head(feature_dim, params.proj_hidden_dim, params.proj_dim)

    def embed(self, x: Tensor) -> Tensor:
        return self.projector(self.backbone(x).flatten(1))

    def branches(self, batch: dict[str, Tensor]) -> list[Branch]:
        """One ``view`` branch: two SimCLR views per image, embedded and gathered over the global batch."""
        x = batch["image"]
        v1, v2 = simclr_view(x, self.params.augment), simclr_view(x, self.params.augment)
        z1, z2 = self.embed(torch.cat([v1, v2])).chunk(2)
        z = torch.cat([gather_with_grad(z1), gather_with_grad(z2)])  # global batch under DDP
        groups = torch.arange(z.shape[0] // 2, device=z.device).repeat(2)
        meta = {k: gather_no_grad(v) for k, v in batch.items() if k != "image" and torch.is_tensor(v)}
        return [Branch("view", z, groups, self.params.calibration, pair_truth("face", view_labels(meta, groups)))]

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        (b,) = self.branches(batch)
        if not b.params.enabled:
            loss = nt_xent(*b.z.chunk(2), self.params.temperature)
            return StepOutput(loss, {"loss": loss.detach()})
        out = branch_loss(b, self.params.temperature)
        loss = out.contrastive + out.calibrated
        logs = {"loss": loss.detach(), "loss_contrastive": out.contrastive.detach(),
                "loss_calibrated": out.calibrated.detach(), **calibration_logs("view", out.mask, b)}
        return StepOutput(loss, logs)

    def on_epoch_end(self, epoch: int, epoch_means: dict[str, float]) -> dict[str, float]:
        return precision_from_means(epoch_means, ("view",))

"""MoCo v2 (He et al. 2020; Chen et al. 2020): momentum key encoder, queue of negative keys, InfoNCE.

The queue and its pointer are buffers, so they are in the state_dict and a resumed run is exact. The key
encoder is updated by EMA in ``on_step_end`` (after the optimiser step). Under torchrun the queue holds
the keys of the global batch.

Shuffling BN (the paper's Sec. 3.3): BatchNorm statistics over the batch let the query and its key share
information about the other images normalised beside them, which the queue's older keys lack, and the
model can "cheat" the pretext task. The paper normalises per GPU (``method.bn_groups`` groups of
consecutive images here, in one process or over ranks) and feeds the key encoder the batch in a random
order (``method.shuffle_bn``), so that a query and its key are normalised among different images.
A trunk without BatchNorm (facecycle) leaves MoCo v2's head with no normalisation at all, and MoCo
collapses; ``method.proj_bn`` (default) puts SimCLR's BatchNorm into the head (docs/methods.md, MoCo).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.views import simclr_view
from ..distributed import gather_no_grad, group_batch_norm, shuffled_forward, world_size
from ..errors import ConfigError
from ..models.heads import mlp_head
from ..precision import fp32
from ..schema.methods import CalibrationParams, MoCoParams
from .base import METHODS, Method, StepOutput
from .calibrated import Branch, pair_truth, view_labels


def moco_head(in_dim: int, hidden_dim: int, out_dim: int, batchnorm: bool = False) -> nn.Sequential:
    """MoCo v2 projection MLP: Linear -> ReLU -> Linear; with ``batchnorm`` SimCLR's Linear -> BN -> ReLU -> Linear."""
    if batchnorm:
        return mlp_head(in_dim, hidden_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


@fp32
def moco_logits(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """(B, 1 + K) logits [q.k, q.queue] / tau of unit vectors; the positive is column 0."""
    pos = (q * k).sum(1, keepdim=True)
    neg = q @ queue.T
    return torch.cat([pos, neg], 1) / temperature


@METHODS.register("moco")
class MoCo(Method):
    Params = MoCoParams

    def __init__(self, params: MoCoParams, backbone: nn.Module, feature_dim: int, image_size: int):
        super().__init__(params, backbone, feature_dim, image_size)
        self.projector = moco_head(feature_dim, params.proj_hidden_dim, params.proj_dim, params.proj_bn)
        self.key_backbone = copy.deepcopy(backbone)
        self.key_projector = copy.deepcopy(self.projector)
        for prm in self.key_modules_parameters():
            prm.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(params.queue_size, params.proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        if params.bn_groups % world_size():
            raise ConfigError(f"method.bn_groups={params.bn_groups} must be a multiple of the {world_size()} "
                              "processes: each process normalises whole BatchNorm groups")
        if params.bn_groups > 1:
            group_batch_norm(self, params.bn_groups)

    def key_modules_parameters(self):
        yield from self.key_backbone.parameters()
        yield from self.key_projector.parameters()

    def query(self, x: Tensor) -> Tensor:
        return F.normalize(self.projector(self.backbone(x).flatten(1)), dim=1)

    def branches(self, batch: dict[str, Tensor]) -> list[Branch]:
        """One ``view`` branch for the analysis: the query embeddings of two views per image (no calibration)."""
        x = batch["image"]
        z = self.query(torch.cat([simclr_view(x, self.params.augment), simclr_view(x, self.params.augment)]))
        groups = torch.arange(x.shape[0], device=x.device).repeat(2)
        return [Branch("view", z, groups, CalibrationParams(), pair_truth("face", view_labels(batch, groups)))]

    @torch.no_grad()
    def key(self, x: Tensor) -> Tensor:
        return F.normalize(self.key_projector(self.key_backbone(x).flatten(1)), dim=1)

    def keys(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(this rank's, the global batch's) keys of the views ``x``, shuffled through the key encoder
        with ``shuffle_bn``."""
        if self.params.shuffle_bn:
            return shuffled_forward(self.key, x)
        k = self.key(x)
        return k, gather_no_grad(k)

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (of the global batch) into the ring buffer at the pointer (wrapping around) and advance it."""
        size = self.queue.shape[0]
        idx = (self.queue_ptr + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[idx[-size:]] = keys[-size:].to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + keys.shape[0]) % size)

    def contrast(self, q: Tensor, k: Tensor, queue: Tensor) -> tuple[Tensor, Tensor]:
        """InfoNCE of the queries ``q`` against their keys ``k`` and the queue, and the pretext task's top-1
        accuracy: the fraction of queries whose own key scores above every queued key."""
        logits = moco_logits(q, k, queue, self.params.temperature)
        target = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        return F.cross_entropy(logits, target), (logits.detach().argmax(1) == 0).float().mean()

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        p = self.params
        x = batch["image"]
        v1, v2 = simclr_view(x, p.augment), simclr_view(x, p.augment)
        q1 = self.query(v1)
        k2, k2_all = self.keys(v2)
        queue = self.queue.clone().detach()
        loss, top1 = self.contrast(q1, k2, queue)
        keys = [k2_all]
        if p.symmetric:
            q2, (k1, k1_all) = self.query(v2), self.keys(v1)
            loss2, top1_2 = self.contrast(q2, k1, queue)
            loss, top1 = 0.5 * (loss + loss2), 0.5 * (top1 + top1_2)
            keys.append(k1_all)
        self.enqueue(torch.cat(keys))
        return StepOutput(loss, {"loss": loss.detach(), "top1": top1})

    @torch.no_grad()
    def on_step_end(self) -> None:
        """EMA update of the key encoder: theta_k <- m theta_k + (1 - m) theta_q."""
        m = self.params.momentum
        query = list(self.backbone.parameters()) + list(self.projector.parameters())
        for pk, pq in zip(self.key_modules_parameters(), query):
            pk.mul_(m).add_(pq.detach(), alpha=1 - m)
        key_buffers = list(self.key_backbone.buffers()) + list(self.key_projector.buffers())
        query_buffers = list(self.backbone.buffers()) + list(self.projector.buffers())
        for bk, bq in zip(key_buffers, query_buffers):
            bk.copy_(bq)

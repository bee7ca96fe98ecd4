"""The method interface shared by SimCLR, MoCo, PCL and PCFRL.

A method owns its backbone plus whatever heads it needs, turns a batch of images into its views and
returns the training loss; the training loop stays method-agnostic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from ..config import EmptyParams
from ..schema.methods import METHOD_PLUGINS
from ..registry import Registry
from .calibrated import Branch


@dataclass
class StepOutput:
    """The loss to back-propagate and detached scalars to log (epoch means go to the JSONL log).

    Logged values stay tensors so the loop can average them on the device without a sync per step.
    """

    loss: Tensor
    logs: dict[str, Tensor | float] = field(default_factory=dict)


class Method(nn.Module):
    """Base class: ``training_step`` is required, the hooks are optional. ``Params`` is the implementation's
    entry in ``schema.methods.METHOD_SCHEMAS`` (whose ``check`` vets a config when it resolves)."""

    Params: ClassVar[type] = EmptyParams

    def __init__(self, params: Any, backbone: nn.Module, feature_dim: int, image_size: int):
        super().__init__()
        self.params = params
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.image_size = image_size

    def training_step(self, batch: dict[str, Tensor]) -> StepOutput:
        """The loss of one batch (``batch["image"]``: (B, 3, H, W) in [0, 1], on the training device)."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Tensor]) -> StepOutput:
        """``training_step``: calling the module (or its DDP wrapper, which all-reduces the gradients) trains it."""
        return self.training_step(batch)

    def branches(self, batch: dict[str, Tensor]) -> list[Branch]:
        """The contrastive branches of a batch: training views embedded as in training (the calibration seam).

        Used by the training step and by ``pcfrl-bench analyze``; methods without one return ``[]``.
        """
        return []

    def on_step_end(self) -> None:
        """Called after each optimiser step (e.g. a momentum-encoder update)."""

    def on_epoch_end(self, epoch: int, epoch_means: dict[str, float]) -> dict[str, float] | None:
        """Called after each epoch with the epoch means of the logged scalars (e.g. DWA weights).

        May return extra epoch-level values (e.g. a precision computed from summed counts) to log.
        """
        return None

    def named_features(self, x: Tensor) -> dict[str, Tensor]:
        """Frozen features of images by name for the analysis: ``fs`` (F_s, the evaluated encoder output)."""
        return {"fs": self.encoder()(x).flatten(1)}

    def encoder(self) -> nn.Module:
        """The frozen feature extractor used for evaluation: images -> (B, D)."""
        return self.backbone


METHODS: Registry[type[Method]] = Registry("method implementation", plugins=METHOD_PLUGINS)

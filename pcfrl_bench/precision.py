"""Mixed precision for pretraining (``pretrain.precision``): autocast, a GradScaler for fp16, fp32 losses.

The backbone and heads run in the autocast dtype; the losses, the calibration scores (Eq. 3-5) and the NS
sums are computed in float32 by :func:`fp32`, so a low-precision run only rounds the features.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import torch
from torch import Tensor

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
F = TypeVar("F", bound=Callable[..., Any])


def to_fp32(value: Any) -> Any:
    """``value`` as float32 when it is a half-precision (fp16, bf16) tensor, else unchanged."""
    if isinstance(value, Tensor) and value.is_floating_point() and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    return value


def autocast_off(like: Tensor | None) -> AbstractContextManager:
    """Autocast disabled on the device type of ``like`` (CPU when None)."""
    return torch.autocast(like.device.type if like is not None else "cpu", enabled=False)


def fp32(fn: F) -> F:
    """Run ``fn`` with autocast off and its half-precision tensor arguments cast to float32."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with autocast_off(next((a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)), None)):
            return fn(*map(to_fp32, args), **{k: to_fp32(v) for k, v in kwargs.items()})
    return wrapper  # type: ignore[return-value]


class MixedPrecision:
    """Autocast context and loss scaling of one training run (fp32: both are no-ops)."""

    def __init__(self, precision: str, device: torch.device):
        if precision not in DTYPES:
            raise ValueError(f"precision must be one of {', '.join(DTYPES)}, got {precision!r}")
        self.precision, self.device_type = precision, device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(self.device_type, dtype=DTYPES[self.precision], enabled=self.precision != "fp32")

    def backward_and_step(self, loss: Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward (loss scaled for fp16) and the optimiser step (skipped by the scaler on inf/NaN gradients)."""
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

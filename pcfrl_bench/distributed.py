"""All-gather helpers so that contrastive losses and NPA calibration see the global batch under DDP.

Both helpers are the identity when ``torch.distributed`` is not initialised (single process), so methods
call them unconditionally. With every rank computing the same global loss, the gradient that the
all-gather sends back to each rank is world_size times the local share, and DDP's gradient *averaging*
turns that into exactly the gradient of the global loss.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from all ranks along dim 0, rank order, keeping the autograd graph."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from all ranks along dim 0 without gradient (keys, labels, metadata)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


__all__ = ["is_distributed", "world_size", "rank", "gather_with_grad", "gather_no_grad"]

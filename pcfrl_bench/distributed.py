"""Multi-process training under ``torchrun``: process group, global-batch helpers, DDP wrap, SyncBatchNorm.

The gathers are the identity when ``torch.distributed`` is not initialised (single process), so methods
call them unconditionally. With every rank computing the same global loss, the gradient that the
all-gather sends back to each rank is world_size times the local share, and DDP's gradient *averaging*
turns that into exactly the gradient of the global loss. Losses over local rows (e.g. L_PDD, a mean per
rank) are averaged by DDP into the mean over the global batch, so one step on W ranks of B images equals
one step of a single process on the W*B images.

Random draws made per image (augmentations, denoising noise) go through :func:`rank_rows`: every rank draws
for the whole global batch from the same seeded stream and keeps its own rows, so the views are those a
single process would make and the RNG streams stay in step.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import BatchSampler, Dataset, RandomSampler, Sampler

LAUNCH_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # set by torchrun for every worker


def initialised() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return initialised() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if initialised() else 1


def rank() -> int:
    return dist.get_rank() if initialised() else 0


def launch_rank() -> int:
    """The rank torchrun gave this process (0 without torchrun), known before the process group starts."""
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """Rank 0 (or a single process): the one process that writes checkpoints, logs and records."""
    return rank() == 0


def barrier() -> None:
    if initialised():
        dist.barrier()


def launched_by_torchrun() -> bool:
    """True in a worker started by ``torchrun`` (its rendezvous variables are in the environment)."""
    return all(k in os.environ for k in LAUNCH_ENV)


@contextmanager
def process_group(device: torch.device) -> Iterator[torch.device]:
    """Join the torchrun process group (nccl on CUDA, gloo on CPU) and yield this rank's device.

    Outside torchrun (or when a group already exists) nothing is initialised and ``device`` is yielded as is.
    On CUDA each rank takes ``cuda:$LOCAL_RANK``.
    """
    if not launched_by_torchrun() or initialised():
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from all ranks along dim 0, rank order, keeping the autograd graph."""
    if not is_distributed():
        return x
    try:  # torch >= 2.14: the functional collective, differentiable (backward: reduce-scatter of the sums)
        from torch.distributed._functional_collectives import all_gather_single
    except ImportError:
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(x.contiguous()), dim=0)
    return all_gather_single(x.contiguous(), 0, dist.group.WORLD).wait()


@torch.no_grad()
def gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (B, ...) from all ranks along dim 0 without gradient (keys, labels, metadata)."""
    if not is_distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


@torch.no_grad()
def mean_over_ranks(x: Tensor) -> Tensor:
    """The mean of ``x`` over all ranks (a copy; ``x`` itself single-process)."""
    if not is_distributed():
        return x
    out = x.clone()
    dist.all_reduce(out)
    return out / dist.get_world_size()


def rank_rows(draw: Callable[[int], Tensor], n: int, blocks: int = 1) -> Tensor:
    """This rank's rows of a per-image random draw, as one process drawing for the global batch would make them.

    ``draw(m)`` returns m rows. The global draw is ``blocks`` consecutive blocks of world_size*n rows (e.g. the
    noise of ``cat([x, x_hat])``); this rank keeps rows rank*n..(rank+1)*n of each block.
    """
    w = world_size()
    if w == 1:
        return draw(blocks * n)
    r = rank()
    rows = draw(blocks * w * n)
    return rows.reshape(blocks, w * n, *rows.shape[1:])[:, r * n:(r + 1) * n].reshape(blocks * n, *rows.shape[1:])


class RankBatchSampler(Sampler[list[int]]):
    """The single-process batches (shuffled with ``generator``, last partial batch dropped), each cut into
    world_size consecutive blocks of which this rank loads its own: the gathered global batch is, in rank
    order, exactly the batch one process would load."""

    def __init__(self, dataset: Dataset, global_batch: int, generator: torch.Generator):
        w = world_size()
        if global_batch % w:
            raise ValueError(f"the global batch {global_batch} does not split over {w} processes")
        self.batches = BatchSampler(RandomSampler(dataset, generator=generator), global_batch, drop_last=True)
        self.local = global_batch // w

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        start = rank() * self.local
        for batch in self.batches:
            yield batch[start:start + self.local]


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are over the global batch (all ranks), with gradient.

    ``torch.nn.SyncBatchNorm`` does this on GPUs only; this version runs on any backend (gloo on CPU) with
    two all-gathers with gradient (sum, then sum of squared deviations), so it is used where SyncBatchNorm
    cannot run. Outside training or a process group it is plain BatchNorm.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)

        def global_sum(t: Tensor) -> Tensor:  # gradient flows back to every rank's share
            return gather_with_grad(t[None]).sum(0)

        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.numel() // x.shape[1] * dist.get_world_size()  # equal batches on every rank
        mean = global_sum(x.sum(dims)) / count
        var = global_sum(((x - mean.view(shape)) ** 2).sum(dims)) / count
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * count / max(count - 1, 1), alpha=m)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


class GroupBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are per group of consecutive rows: the global batch is cut into
    ``groups`` equal groups (rows g*B/G .. (g+1)*B/G - 1), as ``groups`` devices with per-device BatchNorm
    would see it. Under a process group each rank holds ``groups / world_size`` of them (its rows of the
    global batch are consecutive), so W processes equal one. The running statistics move towards the mean of
    the group statistics over all groups (unbiased variances). Outside training it is plain BatchNorm."""

    groups: int = 1

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, groups={self.groups}"

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

    def local_groups(self, rows: int) -> int:
        """How many of the groups are in this rank's ``rows`` rows (a ValueError if they do not split)."""
        w = world_size()
        if self.groups % w or rows % (self.groups // w):
            raise ValueError(f"BatchNorm in {self.groups} groups: a batch of {rows} rows on each of {w} "
                             "processes does not split into equal groups")
        return self.groups // w

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.groups == 1:
            return super().forward(x)
        chunks = x.chunk(self.local_groups(x.shape[0]))
        if not (self.track_running_stats and self.running_mean is not None):
            return torch.cat([F.batch_norm(c, None, None, self.weight, self.bias, True, 0.0, self.eps) for c in chunks])
        self.num_batches_tracked.add_(1)
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        # each group updates its own copy of the running statistics; their mean is the new running statistics
        running = [(self.running_mean.clone(), self.running_var.clone()) for _ in chunks]
        y = torch.cat([F.batch_norm(c, rm, rv, self.weight, self.bias, True, m, self.eps)
                       for c, (rm, rv) in zip(chunks, running)])
        with torch.no_grad():
            self.running_mean.copy_(mean_over_ranks(torch.stack([rm for rm, _ in running]).mean(0)))
            self.running_var.copy_(mean_over_ranks(torch.stack([rv for _, rv in running]).mean(0)))
        return y


def _replace_batch_norms(module: nn.Module, make: Callable[[nn.modules.batchnorm._BatchNorm], nn.Module],
                         keep: tuple[type, ...]) -> nn.Module:
    """Every BatchNorm of ``module`` (not of a ``keep`` type) replaced by ``make(bn)``, in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(child, keep):
            setattr(module, name, make(child))
        else:
            _replace_batch_norms(child, make, keep)
    return module


def _same_tensors(cls: type[nn.modules.batchnorm._BatchNorm], bn: nn.modules.batchnorm._BatchNorm):
    """A ``cls`` BatchNorm holding ``bn``'s own parameters and buffers (so checkpoints are unchanged)."""
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    new._parameters, new._buffers = bn._parameters, bn._buffers  # the same tensors (and requires_grad)
    return new.train(bn.training)


def group_batch_norm(module: nn.Module, groups: int) -> nn.Module:
    """Every BatchNorm of ``module`` as a :class:`GroupBatchNorm` of ``groups`` groups (same tensors)."""
    def make(bn: nn.modules.batchnorm._BatchNorm) -> GroupBatchNorm:
        new = _same_tensors(GroupBatchNorm, bn)
        new.groups = groups
        return new

    return _replace_batch_norms(module, make, ())


def sync_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every BatchNorm of ``module`` with global-batch statistics: ``nn.SyncBatchNorm`` on GPUs, else
    :class:`GlobalBatchNorm`. Parameters and buffers (and so checkpoints) are the same tensors. A
    :class:`GroupBatchNorm` keeps its per-group statistics."""
    if device.type == "cuda":
        return _replace_batch_norms(module, nn.SyncBatchNorm.convert_sync_batchnorm, (GroupBatchNorm, nn.SyncBatchNorm))
    return _replace_batch_norms(module, lambda bn: _same_tensors(GlobalBatchNorm, bn), (GroupBatchNorm, GlobalBatchNorm))


@torch.no_grad()
def shuffled_forward(fn: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    """MoCo's shuffling BN: ``fn`` applied to the global batch in a random order, without gradient.

    The rows of ``x`` are gathered from all ranks, permuted by one random permutation (drawn on rank 0 and
    broadcast), this rank runs ``fn`` on its share of the shuffled batch, and the outputs are gathered and put
    back in the original order. Returns (this rank's rows, all rows) of ``fn(x)``, each output row that of its
    own input row; a BatchNorm in ``fn`` sees other images beside each row than the unshuffled batch holds.
    """
    full = gather_no_grad(x)
    n = full.shape[0]
    perm = torch.randperm(n, device=x.device)
    if is_distributed():
        dist.broadcast(perm, 0)
    start = rank() * x.shape[0]
    out = gather_no_grad(fn(full[perm[start:start + x.shape[0]]]))
    unshuffled = torch.empty_like(out)
    unshuffled[perm] = out
    return unshuffled[start:start + x.shape[0]], unshuffled


def data_parallel(method: nn.Module, device: torch.device) -> nn.Module:
    """``method`` wrapped in DistributedDataParallel inside a process group (its trainable parameters are
    all-reduced, its buffers broadcast from rank 0), else ``method`` itself."""
    if not initialised():
        return method
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(method, device_ids=[device.index] if device.type == "cuda" else None)


__all__ = [
    "GlobalBatchNorm", "GroupBatchNorm", "RankBatchSampler", "barrier", "data_parallel", "gather_no_grad",
    "gather_with_grad", "group_batch_norm", "initialised", "is_distributed", "is_main", "launched_by_torchrun",
    "mean_over_ranks", "process_group", "rank", "rank_rows", "shuffled_forward", "sync_batch_norm", "world_size",
]

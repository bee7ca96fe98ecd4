"""MoCo's shuffling BN on one process: BatchNorm statistics per group (by hand), the key shuffle returns every
key to its image, the step's keys are those of the shuffled groups, the option is checked, resume is exact.
(Two processes equal one with shuffling across ranks: tests/test_ddp.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from test_ddp import _join, _running_stats, _spawn, _step
from test_methods import _StopAfterFirstEpoch
from torch import nn

from pcfrl_bench.data.tensors import TensorImageDataset
from pcfrl_bench.data.views import simclr_view
from pcfrl_bench.distributed import (
    GlobalBatchNorm,
    GroupBatchNorm,
    data_parallel,
    group_batch_norm,
    shuffled_forward,
    sync_batch_norm,
)
from pcfrl_bench.errors import ConfigError
from pcfrl_bench.methods import moco as moco_module
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.train import pretrain

CPU = torch.device("cpu")


def _group_bn(groups: int, momentum: float | None = 0.1) -> GroupBatchNorm:
    bn = nn.BatchNorm2d(3, momentum=momentum).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 3.0]))
        bn.running_var.fill_(2.0)
    return group_batch_norm(nn.Sequential(bn), groups)[0]


def test_group_batch_norm_statistics_are_per_group_by_hand() -> None:
    bn = _group_bn(2)
    x = torch.randn(6, 3, 2, 2, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.2]).view(1, 3, 1, 1)
    x[3:] += 5.0  # the second group (rows 3-5) has another mean: whole-batch statistics would differ
    y = bn(x)
    expected, means, variances = [], [], []
    for rows in (x[:3], x[3:]):  # groups of consecutive rows
        mean = rows.mean(dim=(0, 2, 3), keepdim=True)
        var = ((rows - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
        expected.append((rows - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, 3, 1, 1) + bn.bias.view(1, 3, 1, 1))
        means.append(mean.flatten())
        variances.append(var.flatten() * 12 / 11)  # unbiased: 3 rows x 2 x 2 values per channel
    assert torch.allclose(y, torch.cat(expected), atol=1e-12)
    assert not torch.allclose(y, nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, True), atol=1e-3)
    # running statistics: one momentum step towards the mean of the two groups' statistics
    assert torch.allclose(bn.running_mean, 0.1 * (means[0] + means[1]) / 2, atol=1e-12)
    assert torch.allclose(bn.running_var, 0.9 * 2.0 + 0.1 * (variances[0] + variances[1]) / 2, atol=1e-12)
    assert int(bn.num_batches_tracked) == 1
    bn.eval()  # outside training: the running statistics, as plain BatchNorm
    plain = nn.functional.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    assert torch.equal(bn(x), plain)


def test_group_batch_norm_gradient_is_that_of_separate_batch_norms() -> None:
    bn = _group_bn(3, momentum=None)  # momentum None: cumulative average, as nn.BatchNorm
    parts = [_group_bn(1, momentum=None) for _ in range(3)]
    x = torch.randn(9, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(9, 3, 2, 2, dtype=torch.float64)
    (bn(x) * w).sum().backward()
    grad_x, grad_w = x.grad.clone(), bn.weight.grad.clone()
    x.grad = None
    sum((p(c) * wc).sum() for p, c, wc in zip(parts, x.chunk(3), w.chunk(3))).backward()
    assert torch.allclose(grad_x, x.grad, atol=1e-12)
    assert torch.allclose(grad_w, sum(p.weight.grad for p in parts), atol=1e-12)
    assert torch.allclose(bn.running_mean, sum(p.running_mean for p in parts) / 3, atol=1e-12)
    with pytest.raises(ValueError, match="3 groups"):
        bn(torch.randn(8, 3, 2, 2, dtype=torch.float64))


def test_sync_batch_norm_keeps_group_batch_norm() -> None:
    model = nn.Sequential(nn.BatchNorm1d(2), group_batch_norm(nn.Sequential(nn.BatchNorm1d(2)), 2))
    sync_batch_norm(model, CPU)
    assert type(model[0]) is GlobalBatchNorm and type(model[1][0]) is GroupBatchNorm and model[1][0].groups == 2


def test_shuffled_forward_returns_every_output_to_its_row() -> None:
    x = torch.arange(24, dtype=torch.float64).view(8, 3)
    seen = []

    def fn(z: torch.Tensor) -> torch.Tensor:
        seen.append(z)
        return z - z[:4].mean(0)  # depends on the first half of the batch it is given (a BatchNorm group)

    torch.manual_seed(3)
    local, full = shuffled_forward(fn, x)
    torch.manual_seed(3)
    perm = torch.randperm(8)
    assert torch.equal(seen[0], x[perm]) and not torch.equal(perm, torch.arange(8))
    assert torch.equal(local, full)  # one process: its rows are all rows
    first = perm[:4]  # the images in the first group of the shuffled batch
    expected = torch.empty_like(x)
    expected[perm] = x[perm] - x[first].mean(0)
    assert torch.equal(full, expected)
    assert torch.equal(shuffled_forward(lambda z: 2 * z, x)[1], 2 * x)  # a row-wise fn: back in the original order


def _moco(*sets: str):
    """The smoke MoCo on digits (timm test_resnet: BatchNorm throughout), batch 8 in 2 groups."""
    resolved = resolve("moco", "digits", "smoke", overrides=["model.width=1", "pretrain.batch_size=8", *sets])
    torch.manual_seed(0)
    return build_method(resolved), resolved.config


def test_moco_keys_come_from_the_shuffled_groups() -> None:
    moco, _ = _moco()
    norms = [m for m in moco.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert norms and all(type(m) is GroupBatchNorm and m.groups == 2 for m in norms)
    plain, _ = _moco("method.bn_groups=1")  # same parameters and buffers: checkpoints are interchangeable
    assert moco.state_dict().keys() == plain.state_dict().keys()
    assert not any(isinstance(m, GroupBatchNorm) for m in plain.modules())
    moco.train()
    x = torch.rand(8, 3, 16, 16)
    torch.manual_seed(5)
    moco.training_step({"image": x})
    torch.manual_seed(5)
    _, v2 = simclr_view(x, moco.params.augment), simclr_view(x, moco.params.augment)
    perm = torch.randperm(8)  # drawn after the views, as in the step
    with torch.no_grad():
        keys = torch.empty(8, moco.params.proj_dim)
        keys[perm] = moco.key(v2[perm])  # groups: shuffled rows 0-3 and 4-7
        unshuffled = moco.key(v2)
    assert torch.allclose(moco.queue[:8], keys, atol=1e-6)
    assert not torch.allclose(keys, unshuffled, atol=1e-3)  # the grouping changes the keys: the shuffle is live


@pytest.mark.parametrize("groups", [3, 0])
def test_bn_groups_must_divide_the_batch(groups: int) -> None:
    with pytest.raises(ConfigError, match="method.bn_groups"):
        resolve("moco", "digits", "smoke", overrides=[f"method.bn_groups={groups}"])


def test_bn_groups_must_split_over_the_processes(monkeypatch) -> None:
    monkeypatch.setattr(moco_module, "world_size", lambda: 4)  # 2 groups cannot be shared by 4 processes
    with pytest.raises(ConfigError, match="multiple of the 4 processes"):
        _moco()
    monkeypatch.setattr(moco_module, "world_size", lambda: 2)
    assert _moco()[0].params.bn_groups == 2


def test_moco_resume_is_exact(tmp_path: Path) -> None:
    """Two epochs in one go equal one epoch, an interruption and a resume: weights, BatchNorm statistics, queue."""
    sets = ("pretrain.epochs=2", "pretrain.checkpoint_every=1", "method.queue_size=12")
    images = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    full, cfg = _moco(*sets)
    pretrain(full, TensorImageDataset(images, {}), cfg.pretrain, tmp_path / "a", seed=0, device=CPU, progress=False)
    interrupted, _ = _moco(*sets)
    with pytest.raises(KeyboardInterrupt):
        pretrain(interrupted, _StopAfterFirstEpoch(images, {}), cfg.pretrain, tmp_path / "b", seed=0, device=CPU,
                 progress=False)
    assert int(interrupted.queue_ptr) == 2 * 8 % 12  # epoch 1: 2 steps of 8 keys, wrapped around 12 rows
    resumed, _ = _moco(*sets)
    pretrain(resumed, TensorImageDataset(images, {}), cfg.pretrain, tmp_path / "b", seed=0, device=CPU, resume=True,
             progress=False)
    a, b = full.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and {"queue", "queue_ptr"} <= a.keys()
    assert int(a["queue_ptr"]) == 4 * 8 % 12
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---- two processes: shuffling across ranks, two BatchNorm groups per rank ------------------------------------

GROUPS = ["method.bn_groups=4", "method.symmetric=true"]


def _moco_double():
    method, _ = _moco(*GROUPS)
    return sync_batch_norm(method, CPU).double()  # what pretrain does under torchrun (GroupBatchNorm stays)


def _groups_worker(rank: int, port: int, out: dict) -> None:
    _join(rank, port)
    method = _moco_double()
    images = _ddp_images()
    loss, grads = _step(data_parallel(method, CPU), method, {"image": images[rank * 4:(rank + 1) * 4]})
    out[rank] = (loss, grads, method.queue.clone(), _running_stats(method))
    dist.destroy_process_group()


def _ddp_images() -> torch.Tensor:
    return torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_two_processes_with_shuffling_across_ranks_equal_one() -> None:
    """bn_groups=4 on 2 ranks (2 groups each), symmetric: the keys are shuffled over the global batch (the
    permutation from rank 0), and gradients, queue (both key sets, single-process order) and running statistics
    are those of one process on the 8 images."""
    (loss0, grads0, queue0, stats0), (loss1, *_) = _spawn(_groups_worker).values()
    method = _moco_double()
    loss, grads = _step(method, method, {"image": _ddp_images()})
    assert (loss0 + loss1) / 2 == pytest.approx(loss, rel=1e-10)
    flat, flat0 = torch.cat([g.flatten() for g in grads.values()]), torch.cat([grads0[k].flatten() for k in grads])
    assert (flat0 - flat).norm() / flat.norm() < 1e-6
    assert torch.allclose(queue0, method.queue, atol=1e-12) and int(method.queue_ptr) == 16
    stats = _running_stats(method)
    assert stats and all(torch.allclose(stats0[k], v, rtol=1e-10, atol=1e-12) for k, v in stats.items())

"""gather_with_grad under a real 2-process gloo group: the DDP-averaged gradient of the global loss
equals the single-process gradient over the whole batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pcfrl_bench.calibration import calibrate, pair_alignment
from pcfrl_bench.distributed import gather_no_grad, gather_with_grad
from pcfrl_bench.losses import calibrated_loss, contrastive_loss


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randn(8, 4, generator=g, dtype=torch.float64)


def _global_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    z = torch.cat([z1, z2])
    n = z1.shape[0]
    groups = torch.arange(n).repeat(2)
    pa = pair_alignment(z, 10.0, ns_reduction="mean")
    cal = calibrate(pa, groups, "threshold", 0.0)
    return contrastive_loss(z, groups, cal) + calibrated_loss(z, groups, cal, pa, beta=1.0)


def _worker(rank: int, port: int, out: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    a, b = _data()
    local_a = a[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    local_b = b[rank * 4:(rank + 1) * 4].clone().requires_grad_(True)
    loss = _global_loss(gather_with_grad(local_a), gather_with_grad(local_b))
    loss.backward()
    ids = gather_no_grad(torch.tensor([rank]))
    out[rank] = (float(loss.detach()), local_a.grad.clone(), local_b.grad.clone(), ids.tolist())
    dist.destroy_process_group()


def test_gather_with_grad_gives_the_global_gradient() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    manager = mp.Manager()
    out = manager.dict()
    mp.start_processes(_worker, args=(port, out), nprocs=2, join=True, start_method="fork")  # no re-import
    a, b = _data()
    a.requires_grad_(True)
    b.requires_grad_(True)
    loss = _global_loss(a, b)
    loss.backward()
    for rank in (0, 1):
        l, ga, gb, ids = out[rank]
        assert abs(l - float(loss.detach())) < 1e-10 and ids == [0, 1]
        # each rank receives world_size x its share; DDP's averaging (/2) gives the exact gradient
        assert torch.allclose(ga / 2, a.grad[rank * 4:(rank + 1) * 4], atol=1e-10)
        assert torch.allclose(gb / 2, b.grad[rank * 4:(rank + 1) * 4], atol=1e-10)

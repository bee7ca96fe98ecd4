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


def test_rank_batch_sampler_of_one_process_is_the_shuffled_data_loader():
    """The single-process data order is DataLoader(shuffle=True, drop_last=True) with the epoch generator, so
    the stored reference runs are unchanged."""
    from torch.utils.data import DataLoader, TensorDataset

    from pcfrl_bench.distributed import RankBatchSampler

    data = TensorDataset(torch.arange(23))
    plain = [b[0].tolist() for b in DataLoader(data, batch_size=4, shuffle=True, drop_last=True,
                                               generator=torch.Generator().manual_seed(5))]
    g = torch.Generator().manual_seed(5)
    ours = [b[0].tolist() for b in DataLoader(data, batch_sampler=RankBatchSampler(data, 4, g), generator=g)]
    assert ours == plain and len(ours) == 5


def _rows_worker(rank: int, port: int, out: dict) -> None:
    from pcfrl_bench.distributed import RankBatchSampler, rank_rows
    from torch.utils.data import TensorDataset

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.manual_seed(3)
    draws = rank_rows(lambda m: torch.arange(m * 2.0).view(m, 2), 2, blocks=2)
    noise = rank_rows(lambda m: torch.randn(m, 3), 2)
    batches = list(RankBatchSampler(TensorDataset(torch.arange(10)), 4, torch.Generator().manual_seed(5)))
    out[rank] = (draws, noise, torch.rand(1), batches)
    dist.destroy_process_group()


def test_rank_rows_and_batches_are_each_ranks_block_of_the_global_ones():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.start_processes(_rows_worker, args=(port, out), nprocs=2, join=True, start_method="fork")
    torch.manual_seed(3)
    rows = torch.arange(16.0).view(8, 2)  # 2 blocks of the global 4 rows: rank 0 keeps rows 0,1 and 4,5
    noise, after = torch.randn(4, 3), torch.rand(1)
    assert torch.equal(out[0][0], rows[[0, 1, 4, 5]]) and torch.equal(out[1][0], rows[[2, 3, 6, 7]])
    assert torch.equal(torch.cat([out[0][1], out[1][1]]), noise)
    assert torch.equal(out[0][2], after) and torch.equal(out[1][2], after)  # RNG streams stay in step
    from torch.utils.data import BatchSampler, RandomSampler

    whole = list(BatchSampler(RandomSampler(range(10), generator=torch.Generator().manual_seed(5)), 4, True))
    assert [a + b for a, b in zip(out[0][3], out[1][3])] == whole and len(whole) == 2


def test_process_group_is_a_no_op_outside_torchrun(monkeypatch):
    from pcfrl_bench.distributed import initialised, process_group

    for key in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    with process_group(torch.device("cpu")) as device:
        assert device == torch.device("cpu") and not initialised()

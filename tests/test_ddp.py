"""torchrun training on 2 gloo processes equals one process on the same global batch.

One step: the DDP-averaged parameter gradients of simclr, moco, pcl and pcfrl on 2 x B images equal the
single-process gradients on the 2B images (float64, relative error < 1e-6; a 1/world_size slip would be
off by 2x). Two epochs of ``pretrain``: same weights and per-step losses as one process (float32).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pcfrl_bench.data.sources import build_source
from pcfrl_bench.distributed import GlobalBatchNorm, data_parallel, sync_batch_norm
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.steplog import STEPS_CSV, read_steps
from pcfrl_bench.train import CHECKPOINT, LOG, pretrain, read_log, seed_everything

CPU = torch.device("cpu")
N = 8  # global batch of the one-step test: 4 images per rank
TASK = {"simclr": "digits", "moco": "digits", "pcl": "synth-fer", "pcfrl": "synth-fer"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(worker: Callable, *args) -> dict:
    """Run ``worker(rank, port, out, *args)`` on 2 gloo processes; ``out`` maps rank -> its result."""
    out = mp.Manager().dict()
    mp.start_processes(worker, args=(_free_port(), out, *args), nprocs=2, join=True, start_method="fork")
    return dict(out)


def _join(rank: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)


def _method(name: str, sync_bn: bool = True):
    # model.width=1: moco's smoke preset narrows the trunk, which timm:test_resnet (with BatchNorm) refuses
    method = build_method(resolve(name, TASK[name], "smoke", overrides=["model.width=1"] if name == "moco" else []))
    return (sync_batch_norm(method, CPU) if sync_bn else method).double()  # what pretrain does under torchrun


def _batch(name: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    size = 16 if TASK[name] == "digits" else 32
    batch = {"image": torch.rand(N, 3, size, size, generator=g, dtype=torch.float64)}
    if name in ("pcl", "pcfrl"):  # truth for the calibration logs (gathered as metadata)
        batch.update(identity=torch.arange(N) % 3, emotion=torch.arange(N) % 2, yaw=torch.linspace(-40, 40, N))
    return batch


def _step(model: torch.nn.Module, method, batch: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    seed_everything(7)  # same views and noise stream in every process
    method.train()
    out = model(batch)
    out.loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in method.named_parameters() if p.grad is not None}
    return float(out.loss.detach()), grads


def _running_stats(method) -> dict[str, torch.Tensor]:
    return {n: b.clone() for n, b in method.named_buffers() if "running" in n}


def _step_worker(rank: int, port: int, out: dict) -> None:
    _join(rank, port)
    results = {}
    for name in TASK:
        method = _method(name)
        local = {k: v[rank * N // 2:(rank + 1) * N // 2] for k, v in _batch(name).items()}
        loss, grads = _step(data_parallel(method, CPU), method, local)
        queue = method.queue.clone() if name == "moco" else None
        results[name] = (loss, grads, queue, _running_stats(method))
    method = _method("simclr", sync_bn=False)  # pretrain.sync_bn=false: BatchNorm statistics per rank
    local = {k: v[rank * N // 2:(rank + 1) * N // 2] for k, v in _batch("simclr").items()}
    results["simclr-local-bn"] = _step(data_parallel(method, CPU), method, local)
    out[rank] = results
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_steps() -> dict:
    return _spawn(_step_worker)


@pytest.mark.parametrize("name", list(TASK))
def test_one_ddp_step_has_the_single_process_gradient(ddp_steps, name):
    method = _method(name)
    loss, grads = _step(method, method, _batch(name))
    (loss0, grads0, queue0, stats0), (loss1, grads1, _, _) = ddp_steps[0][name], ddp_steps[1][name]
    assert (loss0 + loss1) / 2 == pytest.approx(loss, rel=1e-10)  # the mean of the rank losses is the global loss
    assert grads0.keys() == grads1.keys() == grads.keys() and len(grads) > 4
    flat, flat0 = torch.cat([g.flatten() for g in grads.values()]), torch.cat([g.flatten() for g in grads0.values()])
    assert (flat0 - flat).norm() / flat.norm() < 1e-6  # relative error of the whole gradient
    for key, g in grads.items():
        assert torch.equal(grads0[key], grads1[key]), key  # DDP leaves every rank the same averaged gradient
        # each tensor: relative 1e-6 (atol for entries that are 0 up to rounding, e.g. biases before a BatchNorm)
        assert torch.allclose(grads0[key], g, rtol=1e-6, atol=1e-12), (key, float((grads0[key] - g).abs().max()))
    stats = _running_stats(method)  # BatchNorm running statistics updated from the global batch
    assert stats.keys() == stats0.keys() and len(stats) >= 4  # every method has BatchNorm in its heads or trunk
    assert all(torch.allclose(stats0[k], v, rtol=1e-10, atol=1e-12) for k, v in stats.items())
    if name == "moco":  # the queue holds the keys of all 8 images, in the single-process order
        single_queue = method.queue
        assert torch.allclose(queue0, single_queue, atol=1e-12) and method.queue_ptr == N


def test_batch_norm_per_rank_is_another_method(ddp_steps):
    """With ``pretrain.sync_bn=false`` (BatchNorm statistics of 4 images per rank) the gradient is not the
    single-process one: the default global statistics are what makes 2 processes equal 1."""
    method = _method("simclr")
    _, grads = _step(method, method, _batch("simclr"))
    _, local = ddp_steps[0]["simclr-local-bn"]
    flat, flat_local = torch.cat([g.flatten() for g in grads.values()]), torch.cat([g.flatten() for g in local.values()])
    assert (flat_local - flat).norm() / flat.norm() > 1e-2


def test_global_batch_norm_matches_batch_norm_statistics_and_gradient():
    """Single process: GlobalBatchNorm is BatchNorm (the distributed path is covered by the DDP steps)."""
    bn = torch.nn.BatchNorm1d(3).double()
    gbn = sync_batch_norm(torch.nn.Sequential(torch.nn.BatchNorm1d(3)), CPU)[0].double()
    assert isinstance(gbn, GlobalBatchNorm)
    x = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(gbn(x), bn(x)) and torch.allclose(gbn.running_var, bn.running_var)


# SGD: Adam's first steps move every weight by +-lr whatever the gradient's size, so weights whose gradient is 0
# up to float32 rounding (biases before a BatchNorm) would differ by ~lr between any two summation orders.
# pcl, not pcfrl: Algorithm 1's threshold turns a rounding difference into a flipped pair now and then.
SMOKE = ["data.max_samples=32", "pretrain.batch_size=8", "pretrain.epochs=2",
         "pretrain.optim.name=sgd", "pretrain.optim.lr=0.0001"]


def _weights(method) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in method.parameters()])


class Interrupted(Exception):
    pass


def _train(run_dir: Path, data_root: Path, interrupt: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(initial, final) weights of a 2-epoch pcl pretraining (4 steps of 8 images); ``interrupt``: stopped
    after epoch 1 (checkpointed) and resumed by a fresh model."""
    resolved = resolve("pcl", "synth-fer", "smoke", overrides=SMOKE)
    cfg, data = resolved.config, build_source(resolved.config.data, data_root)
    method = build_method(resolved)
    initial = _weights(method)
    if interrupt:
        def stop(epoch: int, means: dict) -> None:
            raise Interrupted
        method.on_epoch_end = lambda epoch, means: stop(epoch, means) if epoch == 1 else None
        with pytest.raises(Interrupted):
            pretrain(method, data, cfg.pretrain, run_dir, seed=0, device=CPU, progress=False)
        method = build_method(resolved)
    pretrain(method, data, cfg.pretrain, run_dir, seed=0, device=CPU, progress=False, resume=interrupt)
    return initial, _weights(method)


def _train_worker(rank: int, port: int, out: dict, run_dir: Path, data_root: Path) -> None:
    _join(rank, port)
    out[rank] = _train(run_dir, data_root, interrupt=True)
    dist.destroy_process_group()


def test_two_epochs_on_two_processes_with_a_resume_end_with_the_single_process_weights(tmp_path):
    ddp = _spawn(_train_worker, tmp_path / "ddp", tmp_path / "data")
    initial, single = _train(tmp_path / "one", tmp_path / "data")
    assert torch.equal(ddp[0][1], ddp[1][1]) and torch.equal(ddp[0][0], initial)
    # what training moved, 2 processes vs 1: equal up to float32 rounding (measured 1.4e-2; a 1/world_size slip: 0.5)
    change = single - initial
    assert (ddp[0][1] - single).norm() / change.norm() < 5e-2
    # rank 0 alone wrote the logs (kept across the resume): one row per epoch / per step, losses as one process's
    assert [r["epoch"] for r in read_log(tmp_path / "ddp")] == [1, 2]
    steps, one = read_steps(tmp_path / "ddp"), read_steps(tmp_path / "one")
    assert [r["step"] for r in steps] == [1, 2, 3, 4] and (tmp_path / "ddp" / CHECKPOINT).is_file()
    assert steps[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-6)  # the same weights and images
    assert [r["loss"] for r in steps] == pytest.approx([r["loss"] for r in one], rel=1e-2)  # then float32 drift


def test_torchrun_trains_on_two_processes_and_rank_0_alone_evaluates(tmp_path):
    """``torchrun --nproc_per_node 2 -m pcfrl_bench run``: one record (from rank 0), two processes in it."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
           "-m", "pcfrl_bench", "--threads", "1", "run", "-m", "simclr", "-t", "digits", "-p", "smoke",
           "--device", "cpu", "--no-progress", "--out", str(tmp_path / "runs"), "--set", "data.max_samples=32",
           "--set", "pretrain.batch_size=8"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("record:") == 1  # rank 1 prints nothing
    records = list((tmp_path / "runs").rglob("*.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["processes"] == 2 and record["precision"] == "fp32"
    assert len(read_steps(Path(record["checkpoint"]))) == 2 * 4  # 2 epochs x 32 / 8 steps, one row each

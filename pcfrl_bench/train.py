"""The pretraining loop: optimiser and schedule from config, progress bar, JSONL and per-step CSV/TensorBoard
logs, atomic checkpoints, trunk snapshots along the run (``pretrain.snapshot_every``), resume, mixed precision and
torchrun (DDP) training.

Randomness is re-seeded from (seed, epoch) at the start of every epoch (data order and augmentation), and
checkpoints are taken at epoch boundaries, so a resumed run repeats an uninterrupted one exactly (CPU).
Under torchrun every rank loads its block of the single-process batch (:class:`RankBatchSampler`) and the
methods gather the global batch, so N processes train the same model as one; rank 0 alone writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from .config import OptimConfig, PretrainConfig
from .distributed import (RankBatchSampler, barrier, data_parallel, initialised, is_main, sync_batch_norm,
                          world_size)
from .errors import CheckpointError, PcfrlError, TrainingDivergedError, WriteError
from .interrupt import check_interrupted
from .io import append_jsonl, atomic_torch_save, atomic_write_text, sweep_temp_files
from .methods.base import Method, StepOutput
from .precision import MixedPrecision
from .progress import reporting, stage
from .snapshots import clear_snapshots, write_snapshot
from .steplog import StepLog

CHECKPOINT = "last.pt"
LOG = "log.jsonl"
SYNC_EVERY = 10  # steps between device syncs (finite-loss check, progress-bar loss)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch, derived from the run seed."""
    return seed * 1_000_003 + epoch


def build_optimizer(params: Iterator[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


OFFICIAL_T_MAX_EPOCHS = 6000  # the official PCL code: CosineAnnealingLR(T_max=6000), stepped once per epoch


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str, min_ratio: float,
              steps_per_epoch: int = 1) -> float:
    """Multiplier of the base learning rate: linear warm-up, then cosine annealing (or constant).

    ``official``: the official PCL schedule, cos over 6000 epochs held constant within an epoch (so an
    800-epoch run keeps >= 0.95 of the base rate); the other schedules anneal per step over the run.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "official":
        epoch = (step - warmup_steps) // max(steps_per_epoch, 1)
        return 0.5 * (1 + math.cos(math.pi * epoch / OFFICIAL_T_MAX_EPOCHS))
    if schedule == "constant" or total_steps <= warmup_steps:
        return 1.0
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, steps_per_epoch: int, epochs: int):
    total, warmup = steps_per_epoch * epochs, steps_per_epoch * cfg.warmup_epochs
    min_ratio = cfg.min_lr / cfg.lr if cfg.lr > 0 else 0.0
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, cfg.scheduler, min_ratio, steps_per_epoch))


@dataclass
class CheckpointState:
    epoch: int  # completed epochs
    complete: bool


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "complete")


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint's contents, unpickled with ``weights_only=True``: only tensors, numbers, strings and
    containers are admitted, so a tampered file cannot run code. Any unreadable file is a CheckpointError."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # a truncated, empty, foreign or booby-trapped file
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(err).__name__}: {reason}). Run again with "
                              "--restart to discard it and pretrain from scratch.") from None
    missing = [k for k in CHECKPOINT_KEYS if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} is not a pcfrl-bench checkpoint (missing {', '.join(missing)}). "
                              "Run again with --restart to discard it and pretrain from scratch.")
    return ckpt


def checkpoint_state(run_dir: Path) -> CheckpointState | None:
    """The state of the checkpoint in ``run_dir``, or None if there is none (CheckpointError if unreadable)."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return None
    ckpt = load_checkpoint(path)
    return CheckpointState(int(ckpt["epoch"]), bool(ckpt["complete"]))


def load_weights(method: Method, run_dir: Path) -> None:
    method.load_state_dict(load_checkpoint(run_dir / CHECKPOINT)["model"])


def nonfinite_tensors(state: Any, prefix: str = "") -> list[str]:
    """Dotted names of the floating tensors in a (nested) state that hold NaN or infinity."""
    if isinstance(state, torch.Tensor):
        return [prefix] if state.is_floating_point() and not bool(torch.isfinite(state).all()) else []
    items = state.items() if isinstance(state, Mapping) else enumerate(state) if isinstance(state, list | tuple) else ()
    return [name for k, v in items for name in nonfinite_tensors(v, f"{prefix}.{k}" if prefix else str(k))]


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 of a model state dict's names, dtypes, shapes and values (what the weights are, not where)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _set_epoch(dataset: Dataset, epoch: int) -> None:
    base = dataset.dataset if isinstance(dataset, Subset) else dataset
    if hasattr(base, "set_epoch"):
        base.set_epoch(epoch)


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch rows of a pretraining's JSONL log (empty when there is none)."""
    path = run_dir / LOG
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Keep the log rows of the epochs a resumed checkpoint contains."""
    kept = [r for r in read_log(path.parent) if r.get("epoch", 0) <= epochs_done]
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))


@contextmanager
def _named_write_failures(run_dir: Path) -> Iterator[None]:
    """A checkpoint or log that cannot be written (full disk, file-size limit) stops the run with a WriteError
    naming the file, the cause and the checkpoint that is kept (atomic writes leave the previous one whole)."""
    try:
        yield
    except WriteError as err:
        try:
            state = checkpoint_state(run_dir)
        except CheckpointError:
            state = None
        kept = f"the checkpoint of epoch {state.epoch} in {run_dir} is intact" if state else "no checkpoint was saved yet"
        raise WriteError(err.filename, err, f"{kept}; free space (or raise the file-size limit), then run again with "
                                            "--resume") from None


def _diverged(problem: str, run_dir: Path) -> None:
    state = checkpoint_state(run_dir)
    kept = f"the last good checkpoint (epoch {state.epoch}) is kept in {run_dir}" if state else "no checkpoint was saved yet"
    raise TrainingDivergedError(f"{problem}; training stopped and {kept}. Lower pretrain.optim.lr or check the data.")


def place_batch(batch: Mapping[str, torch.Tensor], device: torch.device, channels_last: bool) -> dict[str, torch.Tensor]:
    """``batch`` on ``device``, its images in NHWC memory when ``channels_last`` (``pretrain.channels_last``)."""
    out = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def optimisation_step(method: Method, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], *,
                      model: nn.Module | None = None, amp: MixedPrecision | None = None) -> StepOutput:
    """One training step: the method's loss on ``batch``, backward, optimiser step, then the method's
    post-step hook (e.g. a momentum-encoder update). ``model`` is the module called (the DDP wrapper of
    ``method`` under torchrun), ``amp`` the precision (default fp32). The learning-rate schedule is the caller's."""
    amp = amp or MixedPrecision("fp32", batch["image"].device)
    with amp.autocast():
        out = (model or method)(batch)
    optimizer.zero_grad(set_to_none=True)
    amp.backward_and_step(out.loss, optimizer)
    method.on_step_end()
    return out


@dataclass
class PretrainOutcome:
    epochs_run: int
    resumed_from: int | None
    wall_time_s: float


def pretrain(
    method: Method,
    dataset: Dataset,
    cfg: PretrainConfig,
    run_dir: Path,
    *,
    seed: int,
    device: torch.device,
    num_workers: int = 0,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
    description: str = "pretrain",
    metadata: dict[str, Any] | None = None,
) -> PretrainOutcome:
    """Train ``method`` on ``dataset`` for ``cfg.epochs`` epochs, checkpointing into ``run_dir``.

    ``cfg.batch_size`` is the global batch: under torchrun each of the W ranks loads batch_size / W images.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    batch_size = min(cfg.batch_size, len(dataset))
    if batch_size < 2:
        raise PcfrlError(f"pretraining needs at least 2 images per batch; the source has {len(dataset)}")
    if batch_size % world_size():
        raise PcfrlError(f"the batch of {batch_size} images does not split over {world_size()} processes; "
                         "set pretrain.batch_size to a multiple of the process count")
    steps_per_epoch = len(dataset) // batch_size
    method.to(device)
    if cfg.epochs == 0:  # the floors (random-init, raw-pixels): the initial weights are the checkpoint
        if is_main():
            atomic_torch_save({"model": method.state_dict(), "optimizer": {}, "scheduler": {}, "epoch": 0,
                               "complete": True, "metadata": metadata or {}}, run_dir / CHECKPOINT)
        barrier()
        return PretrainOutcome(0, None, 0.0)
    if cfg.channels_last:
        method.to(memory_format=torch.channels_last)
    if cfg.sync_bn and initialised():
        sync_batch_norm(method, device)
    model = data_parallel(method, device)
    amp = MixedPrecision(cfg.precision, device)
    optimizer = build_optimizer(method.parameters(), cfg.optim)
    scheduler = build_scheduler(optimizer, cfg.optim, steps_per_epoch, cfg.epochs)
    start_epoch, resumed_from = 0, None
    if is_main():
        sweep_temp_files(run_dir)  # left by a kill during a checkpoint write (the caller holds the folder's lock)
    if resume and (run_dir / CHECKPOINT).is_file():
        ckpt = load_checkpoint(run_dir / CHECKPOINT, device)
        method.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            amp.scaler.load_state_dict(ckpt["scaler"])
        start_epoch = resumed_from = int(ckpt["epoch"])
        if is_main():
            _truncate_log(run_dir / LOG, start_epoch)
    elif is_main():  # a fresh start: nothing of an earlier one is kept
        (run_dir / LOG).unlink(missing_ok=True)
        clear_snapshots(run_dir)
        if cfg.snapshot_every:
            write_snapshot(method, run_dir, 0, steps_per_epoch, batch_size)
    steps = StepLog(run_dir, start_epoch, start_epoch * steps_per_epoch)

    def save(epoch: int) -> None:
        state = {"model": method.state_dict(), "optimizer": optimizer.state_dict()}
        bad = nonfinite_tensors(state)  # e.g. an infinite BatchNorm variance under a still finite loss
        if bad:  # every rank holds the same state, so all ranks stop together
            more = f" and {len(bad) - 1} more tensors" if len(bad) > 1 else ""
            _diverged(f"non-finite values in {bad[0]}{more} after epoch {epoch}", run_dir)
        if not is_main():
            return
        state.update(scheduler=scheduler.state_dict(), epoch=epoch, complete=epoch >= cfg.epochs,
                     metadata=metadata or {})
        if amp.scaler.is_enabled():
            state["scaler"] = amp.scaler.state_dict()
        atomic_torch_save(state, run_dir / CHECKPOINT)

    started = time.perf_counter()
    total_steps = steps_per_epoch * cfg.epochs
    with _named_write_failures(run_dir), reporting(console, progress and is_main()), \
            stage(description, total_steps, "steps", keep=True, initial=start_epoch * steps_per_epoch) as bar:
        for epoch in range(start_epoch, cfg.epochs):
            seed_everything(epoch_seed(seed, epoch))
            _set_epoch(dataset, epoch)
            generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
            loader = DataLoader(dataset, batch_sampler=RankBatchSampler(dataset, batch_size, generator),
                                generator=generator, num_workers=num_workers, pin_memory=device.type == "cuda")
            model.train()
            sums: dict[str, float] = {}
            epoch_start = waited = time.perf_counter()
            info = f"epoch {epoch + 1}/{cfg.epochs}"
            data_s = 0.0  # host time spent waiting for batches (the data pipeline's share of the epoch)
            for step, batch in enumerate(loader):
                check_interrupted()  # a SIGTERM that arrived while the loader forked its workers
                batch = place_batch(batch, device, cfg.channels_last)
                data_s += time.perf_counter() - waited
                out = optimisation_step(method, optimizer, batch, model=model, amp=amp)
                logs = {**out.logs, "loss": out.loss.detach()}  # the loss that was back-propagated
                steps.add(epoch + 1, epoch * steps_per_epoch + step + 1, scheduler.get_last_lr()[0], logs)
                scheduler.step()
                if (step + 1) % SYNC_EVERY == 0 or step + 1 == steps_per_epoch:
                    rows = steps.flush()  # averaged over the ranks
                    for row in rows:
                        if not math.isfinite(row["loss"]):
                            at = int(row["step"]) - epoch * steps_per_epoch
                            _diverged(f"loss became {row['loss']} at epoch {epoch + 1}, step {at}", run_dir)
                        for k in steps.keys:
                            sums[k] = sums.get(k, 0.0) + row[k]
                    rate = (step + 1) * batch_size / max(time.perf_counter() - epoch_start, 1e-9)
                    info = f"epoch {epoch + 1}/{cfg.epochs} loss {rows[-1]['loss']:.4f} {rate:.0f} img/s"
                bar.advance(1, info)
                waited = time.perf_counter()
            means = {k: v / steps_per_epoch for k, v in sums.items()}
            means.update(method.on_epoch_end(epoch, means) or {})  # e.g. calibration precision
            elapsed = time.perf_counter() - epoch_start
            bar.line(f"epoch {epoch + 1}/{cfg.epochs}, loss {means.get('loss', math.nan):.4f}, "
                     f"{steps_per_epoch * batch_size / max(elapsed, 1e-9):.0f} images/s, {bar.timing()}")
            if is_main():
                append_jsonl(run_dir / LOG, {"epoch": epoch + 1, "lr": scheduler.get_last_lr()[0], "time_s": elapsed,
                                             "data_s": data_s, "steps": steps_per_epoch,
                                             "images_per_s": steps_per_epoch * batch_size / max(elapsed, 1e-9),
                                             **means})
            last = epoch + 1 == cfg.epochs
            if cfg.snapshot_every and ((epoch + 1) % cfg.snapshot_every == 0 or last) and is_main():
                write_snapshot(method, run_dir, epoch + 1, steps_per_epoch, batch_size)  # before the checkpoint
            if (epoch + 1) % cfg.checkpoint_every == 0 or last:
                save(epoch + 1)
    steps.close()
    if start_epoch >= cfg.epochs and not (run_dir / CHECKPOINT).exists():
        save(cfg.epochs)
    barrier()  # the last checkpoint is on disk before any rank goes on
    return PretrainOutcome(cfg.epochs - start_epoch, resumed_from, time.perf_counter() - started)

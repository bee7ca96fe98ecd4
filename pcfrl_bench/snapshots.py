"""Trunks kept along a pretraining (``pretrain.snapshot_every``): the points of a learning curve.

``<run dir>/snapshots/epoch-0005.pt`` holds the trunk's state dict with stripped keys, like ``backbone.pt`` (read
with ``torch.load(weights_only=True)``, and by ``pcfrl-bench eval --checkpoint``); ``epoch-0005.json`` beside it,
written after it, holds the epoch, the global step count and the batch size. A snapshot counts once its JSON is
there, so one cut short by a kill is not read. Both are written atomically by rank 0.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .inputs import read_json
from .io import atomic_torch_save, atomic_write_json
from .models.detect import SNAPSHOT_DIR
from .models.weights import backbone_state


@dataclass(frozen=True)
class Snapshot:
    epoch: int  # epochs trained (0: the initial weights)
    step: int  # optimiser steps taken (global: all processes together)
    path: Path  # the trunk's state dict


def snapshot_epochs(epochs: int, every: int) -> list[int]:
    """The epochs a snapshot is kept at: 0 (the initial weights), every ``every``-th, and the last."""
    return sorted({0, *range(every, epochs + 1, every), epochs})


def _stem(epoch: int) -> str:
    return f"epoch-{epoch:04d}"


def write_snapshot(method: nn.Module, run_dir: Path, epoch: int, steps_per_epoch: int, batch_size: int) -> Snapshot:
    """Keep ``method``'s trunk after ``epoch`` epochs (the weights first, then the JSON that makes it count)."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    path = atomic_torch_save(backbone_state(method), folder / f"{_stem(epoch)}.pt")
    step = epoch * steps_per_epoch
    atomic_write_json(folder / f"{_stem(epoch)}.json", {"epoch": epoch, "step": step, "batch_size": batch_size,
                                                        "steps_per_epoch": steps_per_epoch})
    return Snapshot(epoch, step, path)


def read_snapshots(run_dir: Path) -> dict[int, Snapshot]:
    """The complete snapshots of a pretraining by epoch (empty when it kept none); a JSON that is not one of
    :func:`write_snapshot` leaves its epoch out, as if it had not been kept."""
    found = {}
    for meta in sorted((Path(run_dir) / SNAPSHOT_DIR).glob("epoch-*.json")):
        try:
            info = read_json(meta)
            epoch, step = int(info["epoch"]), int(info["step"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if meta.stem == _stem(epoch) and meta.with_suffix(".pt").is_file():
            found[epoch] = Snapshot(epoch, step, meta.with_suffix(".pt"))
    return found


def missing_snapshots(run_dir: Path, epochs: int, every: int) -> list[int]:
    """The epochs of :func:`snapshot_epochs` that ``run_dir`` holds no snapshot of."""
    kept = read_snapshots(run_dir)
    return [e for e in snapshot_epochs(epochs, every) if e not in kept]


def snapshot_advice(run_dir: Path, missing: list[int], every: int) -> str:
    """Why a finished pretraining has no snapshot of epochs ``missing``, and how to get them."""
    kept = sorted(read_snapshots(run_dir))
    had = f"kept snapshots of epochs {', '.join(map(str, kept))}" if kept else "kept no snapshots"
    shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return (f"the pretraining in {run_dir} {had} (pretrain.snapshot_every is not part of its config hash, so a run "
            f"without it made this checkpoint); epochs {shown} are missing. Run again with --restart to pretrain it "
            f"once more keeping a trunk every {every} epochs (on the same torch build and thread count the final "
            "weights come out the same)")


def clear_snapshots(run_dir: Path) -> None:
    """Remove the snapshots of an earlier start of this pretraining (a fresh start keeps its own)."""
    shutil.rmtree(Path(run_dir) / SNAPSHOT_DIR, ignore_errors=True)


__all__ = ["SNAPSHOT_DIR", "Snapshot", "clear_snapshots", "missing_snapshots", "read_snapshots", "snapshot_advice",
           "snapshot_epochs", "write_snapshot"]

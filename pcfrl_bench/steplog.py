"""Per-step training logs that people already read: ``steps.csv`` always, TensorBoard when installed.

Logged scalars stay on the device and are buffered; every ``flush`` (each ``SYNC_EVERY`` steps in the
training loop) stacks them, averages them over the ranks of a torchrun job and, on rank 0, appends the rows
to ``steps.csv`` and to TensorBoard event files in ``tensorboard/`` (``pip install 'pcfrl-bench[tensorboard]'``).
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .distributed import is_main, mean_over_ranks
from .io import append_text, atomic_write_text

STEPS_CSV = "steps.csv"
TENSORBOARD_DIR = "tensorboard"
FIXED_COLUMNS = ("epoch", "step", "lr")


def summary_writer(log_dir: Path, purge_step: int | None) -> Any:
    """A TensorBoard ``SummaryWriter`` for ``log_dir``, or None when the ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(log_dir), purge_step=purge_step)


def read_steps(run_dir: Path) -> list[dict[str, float]]:
    """The rows of a pretraining's ``steps.csv`` (empty when there is none), values as floats."""
    path = run_dir / STEPS_CSV
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


class StepLog:
    """Buffered per-step scalars of one pretraining (see the module docstring).

    ``start_epoch`` > 0 resumes: rows of later epochs (written after the checkpoint) are dropped first.
    """

    def __init__(self, run_dir: Path, start_epoch: int, start_step: int):
        self.path = run_dir / STEPS_CSV
        self.keys: list[str] | None = None
        self.rows: list[tuple[int, int, float, Tensor]] = []
        self.writer = None
        if not is_main():
            return
        kept = [r for r in read_steps(run_dir) if r["epoch"] <= start_epoch] if start_epoch else []
        if kept:
            self.keys = [k for k in kept[0] if k not in FIXED_COLUMNS]
            self._write(kept, mode="w")
        else:
            self.path.unlink(missing_ok=True)
        if not start_epoch:
            shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)
        self.writer = summary_writer(run_dir / TENSORBOARD_DIR, purge_step=start_step if start_epoch else None)

    def add(self, epoch: int, step: int, lr: float, logs: dict[str, Tensor | float]) -> None:
        """Buffer one step (``epoch`` counted from 1, ``step`` over the whole run)."""
        if self.keys is None:
            self.keys = sorted(logs)
        values = [torch.as_tensor(logs[k], dtype=torch.float64).detach() for k in self.keys]
        device = next((v.device for v in values if v.device.type != "cpu"), torch.device("cpu"))
        self.rows.append((epoch, step, lr, torch.stack([v.to(device) for v in values])))

    def flush(self) -> list[dict[str, float]]:
        """Average the buffered rows over the ranks, write them (rank 0) and return them."""
        if not self.rows:
            return []
        values = mean_over_ranks(torch.stack([r[3] for r in self.rows])).cpu().tolist()
        rows = [{"epoch": e, "step": s, "lr": lr, **dict(zip(self.keys, v))}
                for (e, s, lr, _), v in zip(self.rows, values)]
        self.rows = []
        if is_main():
            self._write(rows, mode="a")
            if self.writer is not None:
                for row in rows:
                    for key in ("lr", *self.keys):
                        self.writer.add_scalar(f"train/{key}", row[key], int(row["step"]))
                self.writer.flush()
        return rows

    def _write(self, rows: list[dict[str, float]], mode: str) -> None:
        columns = [*FIXED_COLUMNS, *self.keys]
        buffer = io.StringIO()
        out = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        if mode == "w" or not self.path.exists():
            out.writeheader()
        out.writerows({**r, "epoch": int(r["epoch"]), "step": int(r["step"])} for r in rows)
        if mode == "w":
            atomic_write_text(self.path, buffer.getvalue())
        else:
            append_text(self.path, buffer.getvalue())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

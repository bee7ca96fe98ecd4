"""The result store: one JSON record per (method, task, preset, seed), written atomically.

A record is a :class:`ResultRecord`: built in one place (:meth:`ResultRecord.create`), read by field. On disk
it is the flat JSON object it always was (its fields, plus kind-specific ones such as the step times of a
complexity record, kept in ``extra``), so every record written by an earlier version still loads.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import subprocess
from dataclasses import MISSING, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from .errors import PcfrlError
from .io import atomic_write_json

PACKAGES = ("torch", "torchvision", "timm", "pytorch-metric-learning", "scikit-learn", "numpy", "pcfrl-bench")
ANALYSIS_DIR = "analysis"
COMPLEXITY_TASK = "complexity"  # the ``task`` of complexity records (Table 10 columns read it)
REQUIRED_FIELDS = ("method", "task", "preset", "seed", "metric", "metrics", "config", "config_hash")


@dataclass
class ResultRecord:
    """One stored result: what ran, its metrics, the resolved config and where and how it ran."""

    method: str
    task: str
    preset: str
    seed: int
    metric: str  # the headline metric (a key of ``metrics``)
    metrics: dict[str, Any]  # at the final probe epoch (complexity: time_s, flops_g, macs_g, params_m)
    config: dict[str, Any]  # the whole resolved config
    config_hash: str  # RunConfig.result_hash()
    implementation: str = ""
    higher_is_better: bool = True
    protocol: str = ""
    model_selection: str | None = None  # "final_epoch" for evaluation records
    best_over_epochs: dict[str, Any] = field(default_factory=dict)  # the best test value over probe epochs
    best_epoch: int | None = None
    trivial: dict[str, Any] = field(default_factory=dict)  # the protocol's feature-free baseline
    counts: dict[str, int] = field(default_factory=dict)  # samples per split
    pretrain_hash: str | None = None
    checkpoint: str | None = None
    checkpoint_digest: str | None = None
    reused_checkpoint: bool | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. collapsed features
    unreadable_images: dict[str, Any] = field(default_factory=dict)  # split -> images left out
    device: str = ""
    device_name: str | None = None
    torch_threads: int | None = None
    processes: int | None = None  # processes that pretrained together under torchrun (1: a plain run)
    precision: str | None = None  # pretrain.precision (fp32, bf16, fp16)
    wall_time_s: dict[str, float] = field(default_factory=dict)
    pretrain_log: list[dict[str, Any]] = field(default_factory=list)  # epoch rows of the pretraining
    created: str = ""
    python: str | None = None
    platform: str | None = None
    packages: dict[str, str | None] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other stored fields, kept as they are
    path: Path | None = None  # the file it was read from or written to (not stored)

    @classmethod
    def create(cls, cfg: Any, *, method: str, task: str, preset: str, seed: int, **fields: Any) -> ResultRecord:
        """A new record of a run with resolved config ``cfg`` (a RunConfig): the config, its hash, the
        thread count, the creation time and the environment are filled in; ``fields`` sets the rest
        (unknown names go to ``extra``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        extra = {k: fields.pop(k) for k in list(fields) if k not in known}
        base = {"config": cfg.to_dict(), "config_hash": cfg.result_hash(), "torch_threads": torch.get_num_threads(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **environment()}
        return cls(method=method, task=task, preset=preset, seed=seed, **{**base, **fields}, extra=extra)

    @classmethod
    def from_json(cls, data: Any, path: Path | None = None) -> ResultRecord:
        """A record from its JSON object; :class:`ValueError` names the missing required fields."""
        missing = [f for f in REQUIRED_FIELDS if not isinstance(data, dict) or f not in data]
        if missing:
            raise ValueError(f"not a result record (missing {', '.join(missing)})")
        if not isinstance(data["metrics"], dict):
            raise ValueError("'metrics' is not a mapping")
        defaults = {f.name: f.default_factory() for f in dataclasses.fields(cls) if f.default_factory is not MISSING}
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "path"}
        fields = {k: (defaults[k] if v is None and k in defaults else v) for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "_path"}
        record = cls(**fields, extra=extra, path=path)
        record.seed = int(record.seed)
        return record

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object stored on disk (``extra`` merged in, ``path`` left out)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("extra", "path")}
        return {**out, **self.extra}

    def headline(self) -> float | None:
        """The headline metric at the final probe epoch (None when missing or not a number)."""
        value = self.metrics.get(self.metric)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def record_path(out_dir: Path, method: str, task: str, preset: str, seed: int) -> Path:
    return Path(out_dir) / task / method / f"{preset}-seed{seed}.json"


def write_record(out_dir: Path, record: ResultRecord) -> Path:
    """Write ``record`` atomically under ``out_dir``; sets and returns ``record.path``."""
    path = record_path(out_dir, record.method, record.task, record.preset, record.seed)
    record.path = atomic_write_json(path, record.to_json())
    return record.path


def read_record(path: Path) -> ResultRecord:
    """One record file; :class:`ValueError` (or OSError) with the reason when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"unreadable result record ({exc})") from exc
    return ResultRecord.from_json(data, Path(path))


def load_records(root: Path) -> tuple[list[ResultRecord], list[str]]:
    """All records below ``root`` and a list of problems (a corrupt record is reported by path and skipped).

    Folders named ``analysis`` hold checkpoint analyses (``pcfrl-bench analyze``), not records, and are skipped.
    A missing ``root`` is an error (a typo would otherwise look like an empty store).
    """
    if not Path(root).is_dir():
        raise PcfrlError(f"no folder of result records at {root}")
    records, problems = [], []
    for path in sorted(Path(root).rglob("*.json")):
        if ANALYSIS_DIR in path.relative_to(root).parts[:-1]:
            continue
        try:
            records.append(read_record(path))
        except OSError as exc:
            problems.append(f"{path}: unreadable result record ({exc})")
        except (TypeError, ValueError) as exc:
            problems.append(f"{path}: {exc}")
    return records, problems


def git_commit() -> dict[str, Any]:
    """The package's git commit and whether its work tree had uncommitted changes (None outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "platform": platform.platform(), "packages": versions,
            "git": git_commit()}

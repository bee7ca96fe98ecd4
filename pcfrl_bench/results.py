"""The result store: one JSON record per (method, task, preset, seed), written atomically."""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from .catalog import project_root
from .errors import PcfrlError
from .io import atomic_write_json

PACKAGES = ("torch", "torchvision", "timm", "pytorch-metric-learning", "scikit-learn", "numpy", "pcfrl-bench")
ANALYSIS_DIR = "analysis"
REQUIRED_FIELDS = ("method", "task", "preset", "seed", "metric", "metrics", "config", "config_hash")


def record_path(out_dir: Path, method: str, task: str, preset: str, seed: int) -> Path:
    return Path(out_dir) / task / method / f"{preset}-seed{seed}.json"


def write_record(out_dir: Path, record: dict[str, Any]) -> Path:
    path = record_path(out_dir, record["method"], record["task"], record["preset"], record["seed"])
    return atomic_write_json(path, record)


def load_records(root: Path) -> tuple[list[dict[str, Any]], list[str]]:
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
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path}: unreadable result record ({exc})")
            continue
        missing = [f for f in REQUIRED_FIELDS if not isinstance(record, dict) or f not in record]
        if missing:
            problems.append(f"{path}: not a result record (missing {', '.join(missing)})")
            continue
        if not isinstance(record["metrics"], dict):
            problems.append(f"{path}: 'metrics' is not a mapping")
            continue
        record["_path"] = str(path)
        records.append(record)
    return records, problems


def git_commit() -> dict[str, Any]:
    """The project's git commit and whether the work tree had uncommitted changes (None outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=project_root(), capture_output=True, text=True,
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

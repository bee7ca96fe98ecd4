"""The result store: one JSON record per (method, task, preset, seed[, config]), written atomically.

A run of the registry's own config is ``<task>/<method>/<preset>-seed<seed>.json``; a run whose config differs
(``--set`` overrides, a checkpoint to evaluate) adds the first 8 characters of its config hash to the name, so
it can never replace a registry record nor another variant (and vice versa).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .catalog import project_root
from .errors import PcfrlError
from .io import atomic_write_json

PACKAGES = ("torch", "torchvision", "timm", "pytorch-metric-learning", "scikit-learn", "numpy", "pcfrl-bench")
ANALYSIS_DIR = "analysis"
REQUIRED_FIELDS = ("method", "task", "preset", "seed", "metric", "metrics", "config", "config_hash")


SELECTIONS = {"final_epoch": "metrics", "best_over_epochs": "best_over_epochs"}  # selection -> record field
FRAME_COLUMNS = ["method", "task", "preset", "seed", "selection", "metric", "value", "config_hash", "registry",
                 "overrides", "created", "path", "device"]
HASH_CHARS = 8
TRIVIAL = "trivial"  # pseudo-method: the protocol's feature-free baseline, stored in every record's "trivial"


def record_path(out_dir: Path, method: str, task: str, preset: str, seed: int, variant: str | None = None) -> Path:
    """Where a record goes; ``variant`` (the config hash of a non-registry config) is added to the file name."""
    suffix = f"-{variant[:HASH_CHARS]}" if variant else ""
    return Path(out_dir) / task / method / f"{preset}-seed{seed}{suffix}.json"


def write_record(out_dir: Path, record: dict[str, Any]) -> Path:
    """Write ``record`` atomically; a record whose ``registry_config`` is false is named by its config hash."""
    variant = None if record.get("registry_config", True) else str(record["config_hash"])
    path = record_path(out_dir, record["method"], record["task"], record["preset"], record["seed"], variant)
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
        if Path(git("rev-parse", "--show-toplevel")).resolve() != project_root():
            return {"commit": None, "dirty": None}  # an installed copy (e.g. in a venv inside some repository)
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


def _device_text(record: dict[str, Any]) -> str:
    """Where a record ran, e.g. ``cpu (1 thread)`` or ``cuda (NVIDIA H200)``; '' when not stored."""
    device = str(record.get("device") or "")
    if device.startswith("cuda") and record.get("device_name"):
        return f"{device} ({record['device_name']})"
    if device == "cpu" and record.get("torch_threads"):
        threads = int(record["torch_threads"])
        return f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    return device


def records_frame(records: list[dict[str, Any]], registry: list[bool] | None = None) -> pd.DataFrame:
    """Long frame, one row per (record, selection, numeric metric): FRAME_COLUMNS. ``registry`` flags each
    record as made with its registry config (default: the record's own ``registry_config`` field, else True).
    A record's ``trivial`` metrics (the protocol's feature-free baseline) become rows of the pseudo-method
    ``trivial`` under both selections."""
    import pandas as pd  # imported when used: runs never need it

    rows = []
    for i, rec in enumerate(records):
        is_registry = registry[i] if registry is not None else bool(rec.get("registry_config", True))
        overrides = " ".join(rec.get("overrides") or [])
        sources = [(rec["method"], selection, rec.get(field_name)) for selection, field_name in SELECTIONS.items()]
        sources += [(TRIVIAL, selection, rec.get("trivial")) for selection in SELECTIONS]
        for method, selection, metrics in sources:
            if not isinstance(metrics, dict):
                continue
            for metric, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    rows.append((method, rec["task"], rec["preset"], int(rec["seed"]), selection, str(metric),
                                 float(value), str(rec.get("config_hash") or ""), is_registry, overrides,
                                 str(rec.get("created") or ""), str(rec.get("_path") or ""), _device_text(rec)))
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def is_registry_record(record: dict[str, Any]) -> bool:
    """Whether ``record`` was made with its method's and task's registry config (no ``--set``, no checkpoint),
    judged by its config hash against today's registry; records of unregistered tasks (Table 10's
    ``complexity``) count as registry records."""
    from .runner import registry_result_hash  # the registry config needs the resolver (a higher layer)

    expected = registry_result_hash(str(record["method"]), str(record["task"]), str(record["preset"]),
                                    int(record["seed"]))
    return expected is None or record.get("config_hash") == expected


def frame(root: Path | str, registry_only: bool = True) -> pd.DataFrame:
    """The records below ``root`` as a long DataFrame (FRAME_COLUMNS: one row per record, model selection and
    metric, with ``config_hash``, ``registry`` and ``overrides``). ``registry_only`` keeps the records of the
    registry's configs only (what the README's tables show); sweep points and evaluated checkpoints are the
    rows with ``registry`` False. Unreadable records are skipped (``pcfrl-bench results`` lists them)."""
    records, _ = load_records(Path(root))
    flags = [is_registry_record(r) for r in records]
    out = records_frame(records, flags)
    return out[out["registry"]].reset_index(drop=True) if registry_only else out

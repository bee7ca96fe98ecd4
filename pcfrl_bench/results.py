"""The result store: one JSON record per (method, task, preset, seed[, config]), written atomically.

A run of the registry's own config is ``<task>/<method>/<preset>-seed<seed>.json``; a run whose config differs
(``--set`` overrides, a checkpoint to evaluate) adds the first 8 characters of its config hash to the name, so
it can never replace a registry record nor another variant (and vice versa).

A record is a :class:`ResultRecord`: one typed dataclass, built in one place (:meth:`ResultRecord.create`, which
refuses an unknown field), read by field. On disk it is a flat JSON object of its fields with a
``schema_version``; reading one with an unknown field, or without a field of its version, is an error that
names the file and the field. Records of an older version are read through an explicit upgrade
(:data:`UPGRADES`), so every record written by an earlier version still loads, unchanged on disk.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import subprocess
from dataclasses import MISSING, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from .errors import PcfrlError
from .inputs import read_json
from .io import atomic_write_json

PACKAGES = ("torch", "torchvision", "timm", "pytorch-metric-learning", "scikit-learn", "numpy", "pcfrl-bench")
ANALYSIS_DIR = "analysis"
CURVES_DIR = "curves"  # learning curves (pcfrl-bench curves) kept beside records: not records
ANALYSIS_KIND = "calibration-analysis"  # the "kind" of an analysis JSON (pcfrl-bench analyze), not a record
COMPLEXITY_TASK = "complexity"  # the ``task`` of complexity records (Table 10 columns read it)
REQUIRED_FIELDS = ("method", "task", "preset", "seed", "metric", "metrics", "config", "config_hash")
RECORD_VERSION = 2  # the schema_version written by this version (records without one are version 1)
SELECTIONS = {"final_epoch": "metrics", "best_over_epochs": "best_over_epochs"}  # selection -> record field
FRAME_COLUMNS = ["method", "task", "preset", "seed", "selection", "metric", "value", "config_hash", "registry",
                 "overrides", "created", "path", "device"]
HASH_CHARS = 8
TRIVIAL = "trivial"  # pseudo-method: the protocol's feature-free baseline, stored in every record's "trivial"


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
    registry_config: bool = True  # made with the registry's config of method and task (no --set, no checkpoint)
    overrides: list[str] = field(default_factory=list)  # the --set overrides it was run with
    weights: dict[str, Any] = field(default_factory=dict)  # where the evaluated trunk's weights came from
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
    # complexity records (paper Table 10, ``pcfrl-bench complexity``): how the step times were measured
    domain_task: str | None = None  # the task whose trunk, input size and batch size were measured
    batch_size: int | None = None
    image_size: int | None = None
    repeats: int | None = None
    measured_with: list[str] | None = None  # the methods measured in turns with this one
    step_times_s: list[float] | None = None
    schema_version: int = RECORD_VERSION
    path: Path | None = None  # the file it was read from or written to (not stored)

    @classmethod
    def create(cls, cfg: Any, *, method: str, task: str, preset: str, seed: int, **fields: Any) -> ResultRecord:
        """A new record of a run with resolved config ``cfg`` (a RunConfig): the config, its hash, the
        thread count, the creation time and the environment are filled in; ``fields`` sets the rest (a
        TypeError for a name that is not a field)."""
        import torch  # imported when a record is made: reading and listing records need no torch

        base = {"config": cfg.to_dict(), "config_hash": cfg.result_hash(), "torch_threads": torch.get_num_threads(),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **environment()}
        return cls(method=method, task=task, preset=preset, seed=seed, **{**base, **fields})

    @classmethod
    def from_json(cls, data: Any, path: Path | None = None) -> ResultRecord:
        """A record from its JSON object, upgraded from its ``schema_version``; :class:`ValueError` names the
        file (when given) and the unknown, missing or mistyped field."""
        where = f"{path}: " if path is not None else ""
        if not isinstance(data, dict):
            raise ValueError(f"{where}not a result record (a JSON object is expected)")
        version = data.get("schema_version", 1)
        if version not in range(1, RECORD_VERSION + 1):
            raise ValueError(f"{where}result record of schema_version {version!r}; this version of pcfrl-bench "
                             f"reads 1 to {RECORD_VERSION}")
        for step in range(version, RECORD_VERSION):
            data = UPGRADES[step](data)
        fields = {f.name for f in dataclasses.fields(cls)} - {"path"}
        missing = [f for f in REQUIRED_FIELDS if f not in data] or sorted(fields - set(data))
        if missing:
            raise ValueError(f"{where}not a result record of schema_version {RECORD_VERSION} (missing field "
                             f"{', '.join(repr(m) for m in missing)})")
        unknown = sorted(set(data) - fields)
        if unknown:
            raise ValueError(f"{where}unknown field {', '.join(repr(u) for u in unknown)} in a result record "
                             f"(fields: {', '.join(sorted(fields))})")
        if not isinstance(data["metrics"], dict):
            raise ValueError(f"{where}field 'metrics' is not a mapping")
        defaults = {f.name: f.default_factory() for f in dataclasses.fields(cls) if f.default_factory is not MISSING}
        values = {k: (defaults[k] if v is None and k in defaults else v) for k, v in data.items()}
        record = cls(**values, path=path)
        record.seed = int(record.seed)
        return record

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object stored on disk (``path`` left out)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "path"}

    def headline(self) -> float | None:
        """The headline metric at the final probe epoch (None when missing or not a number)."""
        value = self.metrics.get(self.metric)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _upgrade_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (no ``schema_version``): the fields added to records over time were left out where unknown
    then; they get the values a run without them had (registry config, no overrides, fp32 on one process...)
    and unset measurement fields. The copy ``_path`` some early records carried is dropped."""
    if not all(f in data for f in REQUIRED_FIELDS):
        return data  # not a record: reported by the missing fields
    filled = {f.name: (f.default_factory() if f.default_factory is not MISSING else f.default)
              for f in dataclasses.fields(ResultRecord) if f.name != "path"}
    return {**filled, **{k: v for k, v in data.items() if k != "_path"}, "schema_version": 2}


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1_to_2}  # version -> its next


def record_path(out_dir: Path, method: str, task: str, preset: str, seed: int, variant: str | None = None) -> Path:
    """Where a record goes; ``variant`` (the config hash of a non-registry config) is added to the file name."""
    suffix = f"-{variant[:HASH_CHARS]}" if variant else ""
    return Path(out_dir) / task / method / f"{preset}-seed{seed}{suffix}.json"


def write_record(out_dir: Path, record: ResultRecord) -> Path:
    """Write ``record`` atomically under ``out_dir`` (named by its config hash unless ``registry_config``);
    sets and returns ``record.path``."""
    variant = None if record.registry_config else record.config_hash
    path = record_path(out_dir, record.method, record.task, record.preset, record.seed, variant)
    record.path = atomic_write_json(path, record.to_json())
    return record.path


def read_record(path: Path) -> ResultRecord:
    """One record file; :class:`ValueError` (or OSError) with the reason when it is not one."""
    try:
        data = read_json(Path(path))
    except ValueError as exc:
        raise ValueError(f"{path}: unreadable result record ({exc})") from None
    return ResultRecord.from_json(data, Path(path))


def load_records(root: Path) -> tuple[list[ResultRecord], list[str]]:
    """All records below ``root`` and a list of problems (a corrupt record is reported by path and skipped).

    Folders named ``analysis`` hold checkpoint analyses (``pcfrl-bench analyze``) and folders named ``curves``
    learning curves (``pcfrl-bench curves``), not records, and are skipped.
    A missing ``root`` is an error (a typo would otherwise look like an empty store).
    """
    if not Path(root).is_dir():
        raise PcfrlError(f"no folder of result records at {root}")
    records, problems = [], []
    for path in sorted(Path(root).rglob("*.json")):
        if {ANALYSIS_DIR, CURVES_DIR} & set(path.relative_to(root).parts[:-1]):
            continue
        try:
            records.append(read_record(path))
        except OSError as exc:
            problems.append(f"{path}: unreadable result record ({exc})")
        except (TypeError, ValueError) as exc:  # the message names the file
            problems.append(str(exc) if str(exc).startswith(f"{path}: ") else f"{path}: {exc}")
    return records, problems


def git_commit() -> dict[str, Any]:
    """The package's git commit and whether its work tree had uncommitted changes (None outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != Path(__file__).resolve().parents[1]:
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


def _device_text(record: ResultRecord) -> str:
    """Where a record ran, e.g. ``cpu (1 thread)`` or ``cuda (NVIDIA H200)``; '' when not stored."""
    device = str(record.device or "")
    if device.startswith("cuda") and record.device_name:
        return f"{device} ({record.device_name})"
    if device == "cpu" and record.torch_threads:
        threads = int(record.torch_threads)
        return f"cpu ({threads} thread{'s' if threads > 1 else ''})"
    return device


def records_frame(records: list[ResultRecord], registry: list[bool] | None = None) -> pd.DataFrame:
    """Long frame, one row per (record, selection, numeric metric): FRAME_COLUMNS. ``registry`` flags each
    record as made with its registry config (default: the record's own ``registry_config``). A record's
    ``trivial`` metrics (the protocol's feature-free baseline) become rows of the pseudo-method ``trivial``."""
    import pandas as pd  # imported when used: runs never need it

    rows = []
    for i, rec in enumerate(records):
        is_registry = registry[i] if registry is not None else rec.registry_config
        sources = [(rec.method, selection, getattr(rec, field_name)) for selection, field_name in SELECTIONS.items()]
        sources += [(TRIVIAL, selection, rec.trivial) for selection in SELECTIONS]
        for method, selection, metrics in sources:
            if not isinstance(metrics, dict):
                continue
            for metric, value in metrics.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    rows.append((method, rec.task, rec.preset, rec.seed, selection, str(metric), float(value),
                                 rec.config_hash, is_registry, " ".join(rec.overrides), str(rec.created or ""),
                                 str(rec.path or ""), _device_text(rec)))
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


RegistryHash = Callable[[str, str, str, int], "str | None"]  # (method, task, preset, seed) -> result hash


def is_registry_record(record: ResultRecord, registry_hash: RegistryHash | None = None) -> bool:
    """Whether ``record`` was made with its method's and task's registry config (no ``--set``, no checkpoint).

    Without ``registry_hash`` the record's own ``registry_config`` flag (stored when it was written) decides;
    with it (e.g. ``pcfrl_bench.resolution.registry_result_hash``, what the tables and ``pcfrl-bench results``
    use) its config hash is judged against today's registry, so records of an older config count as variants;
    ``registry_hash`` returning None (an unregistered task such as ``complexity``) keeps the record."""
    if registry_hash is None:
        return record.registry_config
    expected = registry_hash(record.method, record.task, record.preset, record.seed)
    return expected is None or record.config_hash == expected


def record_rows(records: list[ResultRecord], registry_hash: RegistryHash | None = None) -> list[dict[str, Any]]:
    """One flat row per record (what ``pcfrl-bench results`` prints): headline metric at the final epoch and
    best over epochs, short config hash, whether it is a registry record (:func:`is_registry_record`)."""
    return [{"task": r.task, "method": r.method, "preset": r.preset, "seed": r.seed, "metric": r.metric,
             "final": r.metrics.get(r.metric), "best_over_epochs": r.best_over_epochs.get(r.metric),
             "config_hash": r.config_hash[:HASH_CHARS], "registry": is_registry_record(r, registry_hash),
             "overrides": " ".join(r.overrides), "path": str(r.path)} for r in records]


def frame(root: Path | str, registry_only: bool = True, registry_hash: RegistryHash | None = None) -> pd.DataFrame:
    """The records below ``root`` as a long DataFrame (FRAME_COLUMNS: one row per record, model selection and
    metric, with ``config_hash``, ``registry`` and ``overrides``). ``registry_only`` keeps the records of the
    registry's configs only (see :func:`is_registry_record` for ``registry_hash``); sweep points and evaluated
    checkpoints are the rows with ``registry`` False. Unreadable records are skipped (``pcfrl-bench results``
    lists them)."""
    records, _ = load_records(Path(root))
    flags = [is_registry_record(r, registry_hash) for r in records]
    out = records_frame(records, flags)
    return out[out["registry"]].reset_index(drop=True) if registry_only else out

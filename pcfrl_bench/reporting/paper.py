"""The paper's Tables 1-10 as data (``pcfrl_bench/resources/paper/tableNN.yaml``): load and validate.

A table file holds ``table`` (its number), ``caption``, optional ``notes``, optional ``group_labels``
({group: printed heading}), optional ``flag_columns`` (the check-mark columns of Tables 5, 6 and 9:
list of {key, label}), ``columns`` (list of {key, task, metric, label, higher_is_better, optional
aliases, optional decimals}) and ``rows`` (list of {method, registry, group, notes, values, optional
flags}). Every row gives every column key in ``values``: a number, or an explicit null for a blank cell.
Errors name the file and the 1-based line of the offending entry.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..catalog import registry_root, resource_root
from ..errors import MalformedFileError
from ..inputs import YAML_MAX_BYTES, decode_text, read_bytes, yaml_text

TABLE_NUMBERS = tuple(range(1, 11))  # the paper's Tables 1-10
TABLE_FILE = re.compile(r"^table(\d\d)\.yaml$")

# Method registry names used by the paper tables that are implemented on other branches and may not yet
# have their methods/<name>.yaml in the registry (the list of the issue "methods").
PLANNED_METHODS = frozenset({
    "simclr", "moco", "pcl", "pcfrl", "simclr-calib-cos", "simclr-calib-npa", "pcl-calib-cos", "pcl-npa-elim",
    "pcfrl-top1", "pcfrl-top2", "pcfrl-top5", "pcfrl-sim-cos", "pcfrl-sim-attn", "pcfrl-sim-npa", "pcl-official",
})
# Task registry names the tables refer to (real datasets), the synthetic stand-ins, and Table 10's
# "complexity" (records of `pcfrl-bench complexity`, not a registry task).
PLANNED_TASKS = frozenset({
    "rafdb", "fer2013", "lfw", "cplfw", "disfa", "aflw2000", "bu3dfe", "stl10", "cifar10",
    "synth-fer", "synth-fr", "synth-au", "synth-hpe", "synth-posecls", "digits", "complexity",
})


@dataclass(frozen=True)
class PaperColumn:
    """One result column: which task and record metric key it corresponds to, and its direction."""

    key: str
    task: str | None
    metric: str
    label: str
    higher_is_better: bool
    aliases: tuple[str, ...] = ()
    decimals: int = 2

    @property
    def metric_keys(self) -> tuple[str, ...]:
        """Record metric keys to try, in order (the metric, then its aliases)."""
        return (self.metric, *self.aliases)


@dataclass(frozen=True)
class FlagColumn:
    """A check-mark column (e.g. 'NPA-calibration' in Table 6)."""

    key: str
    label: str


@dataclass(frozen=True)
class PaperRow:
    """One printed row: the method as the paper names it, its registry name (None if not implemented)."""

    method: str
    registry: str | None
    group: str
    notes: str
    values: dict[str, float | None]
    flags: dict[str, bool] = field(default_factory=dict)
    line: int | None = None


@dataclass(frozen=True)
class PaperTable:
    number: int
    caption: str
    columns: tuple[PaperColumn, ...]
    rows: tuple[PaperRow, ...]
    notes: str = ""
    flag_columns: tuple[FlagColumn, ...] = ()
    group_labels: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def name(self) -> str:
        return f"table{self.number:02d}"

    def column(self, key: str) -> PaperColumn:
        for c in self.columns:
            if c.key == key:
                return c
        raise KeyError(key)


@dataclass(frozen=True)
class SyntheticMap:
    """Paper task -> synthetic stand-in task, and optional metric renames per synthetic task."""

    tasks: dict[str, str]
    metrics: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    def metric_for(self, synthetic_task: str, metric: str) -> str:
        return self.metrics.get(synthetic_task, {}).get(metric, metric)


# ------------------------------------------------------------------------------------------------ YAML helpers


def _line_index(text: str) -> dict[str, Any]:
    """1-based lines of the top-level keys and of each item of ``columns``/``rows``/``flag_columns``."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    out: dict[str, Any] = {}
    if not isinstance(root, yaml.MappingNode):
        return out
    for key_node, value_node in root.value:
        out[key_node.value] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.SequenceNode):
            out[f"{key_node.value}[]"] = [item.start_mark.line + 1 for item in value_node.value]
    return out


def _read_yaml(path: Path) -> tuple[Any, dict[str, Any]]:
    """The file's data (behind the size, nesting and alias limits of ``inputs``) and its line index."""
    text = decode_text(read_bytes(path, YAML_MAX_BYTES, "YAML file"), path)
    return yaml_text(text, path), _line_index(text)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ------------------------------------------------------------------------------------------------ validation


def _parse_column(item: Any, path: Path, line: int | None) -> PaperColumn:
    if not isinstance(item, dict):
        raise MalformedFileError(path, line, "a column must be a mapping {key, task, metric, label, higher_is_better}")
    missing = [k for k in ("key", "task", "metric", "label", "higher_is_better") if k not in item]
    if missing:
        raise MalformedFileError(path, line, f"column {item.get('key', '?')!r} lacks {', '.join(missing)}")
    unknown = set(item) - {"key", "task", "metric", "label", "higher_is_better", "aliases", "decimals"}
    if unknown:
        raise MalformedFileError(path, line, f"column {item['key']!r} has unknown fields {sorted(unknown)}")
    if not isinstance(item["higher_is_better"], bool):
        raise MalformedFileError(path, line, f"column {item['key']!r}: higher_is_better must be true or false")
    if item["task"] is not None and not isinstance(item["task"], str):
        raise MalformedFileError(path, line, f"column {item['key']!r}: task must be a name or null")
    aliases = item.get("aliases") or []
    decimals = item.get("decimals", 2)
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise MalformedFileError(path, line, f"column {item['key']!r}: aliases must be a list of metric names")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 6:
        raise MalformedFileError(path, line, f"column {item['key']!r}: decimals must be an integer 0..6")
    return PaperColumn(str(item["key"]), item["task"], str(item["metric"]), str(item["label"]),
                       item["higher_is_better"], tuple(aliases), decimals)


def _parse_row(item: Any, columns: tuple[PaperColumn, ...], flags: tuple[FlagColumn, ...], path: Path,
               line: int | None, index: int) -> PaperRow:
    where = f"row {index + 1}"
    if not isinstance(item, dict):
        raise MalformedFileError(path, line, f"{where} must be a mapping {{method, registry, group, notes, values}}")
    missing = [k for k in ("method", "registry", "group", "notes", "values") if k not in item]
    if missing:
        raise MalformedFileError(path, line, f"{where} ({item.get('method', '?')!r}) lacks {', '.join(missing)}")
    where = f"{where} ({item['method']!r})"
    unknown = set(item) - {"method", "registry", "group", "notes", "values", "flags"}
    if unknown:
        raise MalformedFileError(path, line, f"{where} has unknown fields {sorted(unknown)}")
    if item["registry"] is not None and not isinstance(item["registry"], str):
        raise MalformedFileError(path, line, f"{where}: registry must be a method name or null")
    values = item["values"]
    if not isinstance(values, dict):
        raise MalformedFileError(path, line, f"{where}: values must be a mapping {{column key: number or null}}")
    keys = [c.key for c in columns]
    absent = [k for k in keys if k not in values]
    extra = [k for k in values if k not in keys]
    if absent:
        raise MalformedFileError(path, line, f"{where}: no value for column(s) {', '.join(absent)} "
                                             "(write null for a blank cell)")
    if extra:
        raise MalformedFileError(path, line, f"{where}: values for unknown column(s) {', '.join(map(str, extra))}")
    bad = [k for k in keys if values[k] is not None and not _is_number(values[k])]
    if bad:
        raise MalformedFileError(path, line, f"{where}: value of {', '.join(bad)} is not a number or null "
                                             f"({', '.join(repr(values[k]) for k in bad)})")
    row_flags = item.get("flags") or {}
    if flags or row_flags:
        fkeys = [f.key for f in flags]
        if not isinstance(row_flags, dict) or sorted(row_flags) != sorted(fkeys) \
                or not all(isinstance(v, bool) for v in row_flags.values()):
            raise MalformedFileError(path, line, f"{where}: flags must give true/false for exactly {fkeys}")
    return PaperRow(str(item["method"]), item["registry"], str(item["group"]), str(item["notes"] or ""),
                    {k: (None if values[k] is None else float(values[k])) for k in keys}, dict(row_flags), line)


def parse_paper_table(data: Any, path: Path, lines: dict[str, Any] | None = None) -> PaperTable:
    """Validate one table's parsed YAML; raise ``MalformedFileError`` naming the file, line and row."""
    lines = lines or {}
    if not isinstance(data, dict):
        raise MalformedFileError(path, None, "a paper table file must be a mapping")
    missing = [k for k in ("table", "caption", "columns", "rows") if k not in data]
    if missing:
        raise MalformedFileError(path, None, f"missing top-level field(s) {', '.join(missing)}")
    unknown = set(data) - {"table", "caption", "notes", "columns", "rows", "flag_columns", "group_labels"}
    if unknown:
        raise MalformedFileError(path, None, f"unknown top-level field(s) {sorted(unknown)}")
    number = data["table"]
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise MalformedFileError(path, lines.get("table"), f"table must be a positive integer, not {number!r}")
    for key in ("columns", "rows"):
        if not isinstance(data[key], list) or not data[key]:
            raise MalformedFileError(path, lines.get(key), f"{key} must be a non-empty list")

    def item_line(key: str, i: int) -> int | None:
        found = lines.get(f"{key}[]") or []
        return found[i] if i < len(found) else lines.get(key)

    columns = tuple(_parse_column(c, path, item_line("columns", i)) for i, c in enumerate(data["columns"]))
    dup = sorted({c.key for c in columns if [d.key for d in columns].count(c.key) > 1})
    if dup:
        raise MalformedFileError(path, lines.get("columns"), f"duplicate column key(s) {dup}")
    raw_flags = data.get("flag_columns") or []
    if not isinstance(raw_flags, list) or not all(isinstance(f, dict) and {"key", "label"} <= set(f)
                                                  for f in raw_flags):
        raise MalformedFileError(path, lines.get("flag_columns"), "flag_columns must be a list of {key, label}")
    flags = tuple(FlagColumn(str(f["key"]), str(f["label"])) for f in raw_flags)
    rows = tuple(_parse_row(r, columns, flags, path, item_line("rows", i), i) for i, r in enumerate(data["rows"]))
    group_labels = data.get("group_labels") or {}
    if not isinstance(group_labels, dict):
        raise MalformedFileError(path, lines.get("group_labels"), "group_labels must be a mapping {group: heading}")
    return PaperTable(number, str(data["caption"]), columns, rows, str(data.get("notes") or ""), flags,
                      {str(k): str(v) for k, v in group_labels.items()}, Path(path))


def load_paper_table(path: Path) -> PaperTable:
    """Load and validate one ``tableNN.yaml``; the number inside must match the file name."""
    path = Path(path)
    data, lines = _read_yaml(path)
    table = parse_paper_table(data, path, lines)
    m = TABLE_FILE.match(path.name)
    if m and int(m.group(1)) != table.number:
        raise MalformedFileError(path, lines.get("table"), f"file name says table {int(m.group(1))} "
                                                            f"but the file says table {table.number}")
    return table


def default_paper_dir() -> Path:
    return resource_root() / "paper"


def load_paper_tables(paper_dir: Path | None = None) -> list[PaperTable]:
    """Every ``tableNN.yaml`` under ``paper_dir`` (default: the package's ``resources/paper``), sorted by table number."""
    paper_dir = Path(paper_dir) if paper_dir is not None else default_paper_dir()
    files = sorted(p for p in paper_dir.glob("table*.yaml") if TABLE_FILE.match(p.name))
    if not files:
        raise MalformedFileError(paper_dir, None, "no tableNN.yaml files (expected pcfrl_bench/resources/paper/table01.yaml ...)")
    return sorted((load_paper_table(p) for p in files), key=lambda t: t.number)


def load_synthetic_map(path: Path | None = None) -> SyntheticMap:
    """Load ``synthetic_map.yaml``: ``tasks`` {paper task: synthetic task}, optional ``metrics`` renames."""
    path = Path(path) if path is not None else default_paper_dir() / "synthetic_map.yaml"
    data, lines = _read_yaml(path)
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict) or not data["tasks"]:
        raise MalformedFileError(path, lines.get("tasks"),
                                 "expected a non-empty mapping 'tasks: {paper task: synthetic task}'")
    tasks = data["tasks"]
    bad = [k for k, v in tasks.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise MalformedFileError(path, lines.get("tasks"), f"task names must be strings: {bad}")
    metrics = data.get("metrics") or {}
    if not isinstance(metrics, dict) or not all(
            isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in v.items())
            for v in metrics.values()):
        raise MalformedFileError(path, lines.get("metrics"), "metrics must map {synthetic task: {metric: metric}}")
    unknown = set(data) - {"tasks", "metrics"}
    if unknown:
        raise MalformedFileError(path, None, f"unknown top-level field(s) {sorted(unknown)}")
    return SyntheticMap(dict(tasks), {k: dict(v) for k, v in metrics.items()}, path)


def registry_method_names(root: Path | None = None) -> set[str]:
    """Method names that have a ``methods/<name>.yaml`` under ``root`` (default: the registry's root)."""
    root = Path(root) if root is not None else registry_root()
    return {p.stem for p in (root / "methods").glob("*.yaml")}


def unknown_registry_names(tables: list[PaperTable], root: Path | None = None) -> list[str]:
    """'tableNN row N (method): name' for each registry name neither in methods/ nor in PLANNED_METHODS."""
    known = registry_method_names(root) | PLANNED_METHODS
    return [f"{t.name} row {i + 1} ({r.method}): {r.registry}"
            for t in tables for i, r in enumerate(t.rows) if r.registry is not None and r.registry not in known]

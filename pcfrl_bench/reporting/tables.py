"""The paper's Tables 1-10 with the paper's value and the reproduced value side by side.

Reproduced = mean ± sample std (ddof 1) over seeds of the stored result records of one preset, with the
number of seeds; blank where no run exists. Model selection is the final probe epoch (``final_epoch``,
default) or the best test value over probe epochs (``best_over_epochs``, the official PCL code's choice,
marked with †). The best value of each column is bold, separately for the paper's and the reproduced
values, respecting whether higher or lower is better. The "synthetic" variant replaces each paper task by
its synthetic stand-in (``resources/paper/synthetic_map.yaml``) and shows reproduced values only.

Everything but :func:`render_all_tables` is a pure function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..io import atomic_write_text
from ..results import COMPLEXITY_TASK, SELECTIONS, RegistryHash, ResultRecord, load_records, records_frame
from .escape import csv_cell, latex_text, markdown_code, markdown_text
from .instrument import BOUNDS, TRIVIAL
from .paper import PaperTable, SyntheticMap, load_paper_tables, load_synthetic_map

VARIANTS = ("paper", "synthetic")
BEST_EPOCH_MARK = "†"
BOUNDS_GROUP = "bounds"  # floors and ceiling measured by the harness, appended to every table with a record
BOUND_LABELS = {TRIVIAL: "Trivial baseline (no features)", "raw-pixels": "Raw pixels", "random-init": "Random init",
                "supervised": "Supervised (same trunk and budget)"}
NOT_COMPARED_GROUPS = frozenset({"supervised", BOUNDS_GROUP})  # the paper bolds the best self-supervised result
AGG_COLUMNS = ["method", "task", "preset", "selection", "metric", "mean", "std", "n", "seeds", "devices"]


# ------------------------------------------------------------------------------------------------ aggregation




def split_off_registry(records: Sequence[ResultRecord], registry_hash: RegistryHash
                       ) -> tuple[list[ResultRecord], list[ResultRecord]]:
    """(records made with their method's registry config, the others). A table row names a registry method,
    so a record run with ``--set`` overrides (a sweep point) or by an older config must not stand in for
    it; ``registry_hash`` returning None (an unregistered task such as ``complexity``) keeps the record."""
    kept, off = [], []
    for rec in records:
        expected = registry_hash(rec.method, rec.task, rec.preset, rec.seed)
        (off if expected is not None and rec.config_hash != expected else kept).append(rec)
    return kept, off


def off_registry_problems(records: Sequence[ResultRecord]) -> list[str]:
    """One line per method: how many records were left out for a non-registry config, with an example."""
    by_method: dict[str, list[str]] = {}
    for rec in records:
        by_method.setdefault(rec.method, []).append(str(rec.path or "?"))
    return [f"{method}: {len(paths)} record(s) made with a config other than the registry's (--set overrides, "
            f"sweeps or an older version), not counted; e.g. {sorted(paths)[0]}"
            for method, paths in sorted(by_method.items())]


def aggregate_records(frame: pd.DataFrame, preset: str, selection: str = "final_epoch") -> pd.DataFrame:
    """Mean, sample std (ddof 1; NaN for one seed), number of seeds and the seeds of each
    (method, task, metric) for one preset and model selection. A seed stored twice (e.g. in two result
    folders) counts once: the most recently created record wins."""
    if selection not in SELECTIONS:
        raise ConfigError(f"Unknown model selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    sub = frame[(frame["preset"] == preset) & (frame["selection"] == selection)]
    if sub.empty:
        return pd.DataFrame(columns=AGG_COLUMNS)
    sub = (sub.sort_values(["created", "path"])
              .drop_duplicates(["method", "task", "metric", "seed"], keep="last"))
    grouped = sub.groupby(["method", "task", "metric"], sort=True)["value"]
    out = grouped.agg(mean="mean", std=lambda v: v.std(ddof=1), n="count").reset_index()
    keys = ["method", "task", "metric"]
    seeds = sub.groupby(keys, sort=True)["seed"].agg(lambda s: tuple(sorted(s))).reset_index()
    devices = sub.groupby(keys, sort=True)["device"].agg(lambda d: tuple(sorted(set(d) - {""}))).reset_index()
    out = out.merge(seeds.rename(columns={"seed": "seeds"}), on=keys).merge(devices.rename(columns={"device": "devices"}),
                                                                          on=keys)
    out["preset"], out["selection"] = preset, selection
    out["n"] = out["n"].astype(int)
    return out[AGG_COLUMNS]


@dataclass(frozen=True)
class Reproduced:
    """Aggregate of one (method, task, metric): mean, sample std (NaN with one seed), number of seeds."""

    mean: float
    std: float
    n: int
    metric: str
    devices: tuple[str, ...] = ()


def lookup(agg: pd.DataFrame, method: str | None, task: str | None, metric_keys: Sequence[str]) -> Reproduced | None:
    """The aggregate for ``method`` on ``task`` under the first metric key found (exact, then
    case-insensitive); None where no run exists."""
    if method is None or task is None or agg.empty:
        return None
    sub = agg[(agg["method"] == method) & (agg["task"] == task)]
    if sub.empty:
        return None
    by_metric = {m: i for i, m in zip(sub.index, sub["metric"])}
    lower = {m.lower(): i for m, i in by_metric.items()}
    for key in metric_keys:
        i = by_metric.get(key, lower.get(key.lower()))
        if i is not None:
            r = sub.loc[i]
            return Reproduced(float(r["mean"]), float(r["std"]), int(r["n"]), str(r["metric"]), tuple(r["devices"]))
    return None


def best_rows(values: Sequence[float | None], higher_is_better: bool) -> frozenset[int]:
    """Indices of the best value (all ties) among the non-blank ``values``; empty if all are blank."""
    arr = np.array([np.nan if v is None else v for v in values], dtype=float)
    if arr.size == 0 or np.isnan(arr).all():
        return frozenset()
    best = np.nanmax(arr) if higher_is_better else np.nanmin(arr)
    return frozenset(np.flatnonzero(np.isclose(arr, best, rtol=0.0, atol=1e-12)).tolist())


# ------------------------------------------------------------------------------------------------ table view


@dataclass(frozen=True)
class ViewColumn:
    key: str
    label: str
    task: str | None
    metric_keys: tuple[str, ...]
    higher_is_better: bool
    decimals: int
    show_paper: bool


@dataclass(frozen=True)
class ViewRow:
    method: str
    registry: str | None
    group: str
    notes: str
    flags: dict[str, bool]
    paper: dict[str, float | None]
    reproduced: dict[str, Reproduced | None]


@dataclass(frozen=True)
class TableView:
    """Everything the three output formats need for one table."""

    table: PaperTable
    variant: str
    preset: str
    selection: str
    columns: tuple[ViewColumn, ...]
    rows: tuple[ViewRow, ...]
    best_paper: dict[str, frozenset[int]] = field(default_factory=dict)
    best_reproduced: dict[str, frozenset[int]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def mark(self) -> str:
        return BEST_EPOCH_MARK if self.selection == "best_over_epochs" else ""


def _paper_columns(table: PaperTable) -> list[ViewColumn]:
    return [ViewColumn(c.key, c.label, c.task, c.metric_keys, c.higher_is_better, c.decimals, True)
            for c in table.columns]


def _synthetic_columns(table: PaperTable, smap: SyntheticMap) -> list[ViewColumn]:
    """Paper columns with their task replaced by its stand-in; unmapped columns dropped; columns landing on
    the same (task, metric) merged into one whose label names every paper column it stands for."""
    merged: dict[tuple[str, str], tuple[ViewColumn, list[str]]] = {}
    for c in table.columns:
        task = smap.tasks.get(c.task) if c.task else None
        if task is None:
            continue
        keys = tuple(dict.fromkeys(smap.metric_for(task, k) for k in c.metric_keys))
        ident = (task, keys[0])
        if ident in merged:
            merged[ident][1].append(c.label)
        else:
            merged[ident] = (ViewColumn(c.key, "", task, keys, c.higher_is_better, c.decimals, False), [c.label])
    stands_for_itself = {task for task, paper_task in ((smap.tasks.get(c.task), c.task) for c in table.columns)
                         if task == paper_task}  # e.g. Table 10's complexity: no arrow
    return [ViewColumn(v.key, " / ".join(labels) + ("" if v.task in stands_for_itself else f" → {v.task}"), v.task,
                       v.metric_keys, v.higher_is_better, v.decimals, False) for v, labels in merged.values()]


def build_table_view(table: PaperTable, agg: pd.DataFrame, preset: str, selection: str = "final_epoch",
                     synthetic_map: SyntheticMap | None = None,
                     bold_excluded_groups: frozenset[str] = NOT_COMPARED_GROUPS) -> TableView:
    """Join one paper table with the aggregated records. With ``synthetic_map`` the synthetic variant:
    tasks replaced by their stand-ins, only rows with a registry method (each once), no paper values.
    Rows of ``bold_excluded_groups`` (fully supervised methods, as in the paper) never compete for bold."""
    if selection not in SELECTIONS:
        raise ConfigError(f"Unknown model selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    synthetic = synthetic_map is not None
    columns = _synthetic_columns(table, synthetic_map) if synthetic else _paper_columns(table)
    rows, seen = [], set()
    for r in table.rows:
        if synthetic and (r.registry is None or r.registry in seen):
            continue
        seen.add(r.registry)
        paper = {c.key: (None if synthetic else r.values.get(c.key)) for c in columns}
        repro = {c.key: lookup(agg, r.registry, c.task, c.metric_keys) for c in columns}
        rows.append(ViewRow(r.method, r.registry, r.group, r.notes, dict(r.flags), paper, repro))
    for bound in (b for b in BOUNDS if b not in seen):  # floors and ceiling, where measured
        repro = {c.key: lookup(agg, bound, c.task, c.metric_keys) for c in columns}
        if any(repro.values()):
            rows.append(ViewRow(BOUND_LABELS[bound], bound, BOUNDS_GROUP, "", {}, {c.key: None for c in columns},
                                repro))
    compete = [row.group not in bold_excluded_groups for row in rows]
    best_paper = {c.key: best_rows([v if ok else None for v, ok in zip((row.paper[c.key] for row in rows), compete)],
                                   c.higher_is_better) for c in columns}
    best_repro = {c.key: best_rows([None if row.reproduced[c.key] is None or not ok else row.reproduced[c.key].mean
                                    for row, ok in zip(rows, compete)], c.higher_is_better) for c in columns}
    return TableView(table, "synthetic" if synthetic else "paper", preset, selection, tuple(columns), tuple(rows),
                     best_paper, best_repro)


# ------------------------------------------------------------------------------------------------ formatting


def view_devices(view: TableView) -> list[str]:
    """The devices of every record behind a table's reproduced values, sorted."""
    return sorted({d for row in view.rows for cell in row.reproduced.values() if cell for d in cell.devices})


def format_paper_value(value: float | None, decimals: int) -> str:
    return "" if value is None else f"{value:.{decimals}f}"


def format_reproduced(cell: Reproduced | None, decimals: int, mark: str = "") -> tuple[str, str]:
    """(value part 'mean ± std' or 'mean', suffix ' (n=K)' plus the selection mark); ('', '') when blank."""
    if cell is None:
        return "", ""
    value = f"{cell.mean:.{decimals}f}"
    if cell.n > 1 and math.isfinite(cell.std):
        value += f" ± {cell.std:.{decimals}f}"
    return value, f"{mark} (n={cell.n})"


def _selection_text(selection: str) -> str:
    return ("final probe epoch" if selection == "final_epoch"
            else f"best test value over probe epochs ({BEST_EPOCH_MARK}; optimistic, as the official PCL code)")


def _group_heading(view: TableView, i: int) -> str | None:
    """The heading to print before row ``i``: its group's label where the table names group headings (as
    the paper prints them) and the group changes; else None."""
    group = view.rows[i].group
    labels = {**view.table.group_labels, BOUNDS_GROUP: "Floors and ceiling (measured by the harness)"}
    if group not in labels or (i > 0 and view.rows[i - 1].group == group):
        return None
    return labels[group]


def markdown_table(view: TableView) -> str:
    """One table as Markdown: heading, legend, the grid (group headings as rows), notes."""
    t = view.table
    title = f"Table {t.number}" + (" (synthetic stand-ins)" if view.variant == "synthetic" else "")
    lines = [f"## {title}: {t.caption}", ""]
    if all(c.task == COMPLEXITY_TASK for c in view.columns):
        legend = (f"Preset `{view.preset}`. Reproduced = records of `pcfrl-bench complexity` (time: median seconds "
                  "per training step at the preset's batch size; FLOPs and MACs: training forward pass per input "
                  "image; n = number of records); blank = not measured. Bold = best in its column.")
    else:
        legend = (f"Preset `{view.preset}`, model selection: {_selection_text(view.selection)}. "
                  "Reproduced = mean ± sample std over seeds (n = number of seeds); blank = no run. "
                  "Bold = best in its column (↓ lower / ↑ higher is better as in the paper).")
    if view.variant == "paper":
        legend = "Paper = value printed in the paper. " + legend
    lines += [legend, ""]
    header = ["Method"] + [f.label for f in t.flag_columns]
    for c in view.columns:
        arrow = "↑" if c.higher_is_better else "↓"
        if c.show_paper:
            header += [f"{c.label} (paper)", f"{c.label} (reproduced)"]
        else:
            header.append(f"{c.label} {arrow}" if arrow not in c.label else c.label)
    lines.append("| " + " | ".join(markdown_text(h) for h in header) + " |")
    lines.append("|" + "|".join([":---"] + [":-:"] * (len(header) - 1)) + "|")
    for i, row in enumerate(view.rows):
        heading = _group_heading(view, i)
        if heading is not None:
            lines.append("| " + " | ".join([f"*{markdown_text(heading)}*"] + [""] * (len(header) - 1)) + " |")
        name = markdown_text(row.method) + (f" [{markdown_code(row.registry)}]" if row.registry else "")
        cells = [name] + ["✓" if row.flags.get(f.key) else "" for f in t.flag_columns]
        for c in view.columns:
            if c.show_paper:
                p = format_paper_value(row.paper[c.key], c.decimals)
                cells.append(f"**{p}**" if p and i in view.best_paper[c.key] else p)
            value, suffix = format_reproduced(row.reproduced[c.key], c.decimals, view.mark)
            if value and i in view.best_reproduced[c.key]:
                value = f"**{value}**"
            cells.append(value + suffix)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if view.mark:
        lines += [f"{BEST_EPOCH_MARK} Best test value over probe epochs (model selection on the test set).", ""]
    devices = view_devices(view)
    if devices:
        lines += [f"Reproduced values measured on: {markdown_text(', '.join(devices))}.", ""]
    if view.variant == "paper":
        if t.notes:
            lines += [f"Transcription notes: {markdown_text(t.notes)}", ""]
        noted = [(r.method, r.notes) for r in view.rows if r.notes]
        if noted:
            lines += [f"- {markdown_text(m)}: {markdown_text(n)}" for m, n in noted] + [""]
    return "\n".join(lines)


def table_frame(view: TableView) -> pd.DataFrame:
    """One table as a flat frame for CSV: identity columns, flags, then per column key ``<key>_paper``
    (paper variant only), ``<key>_mean``, ``<key>_std``, ``<key>_n``; raw numbers, blanks as NaN."""
    out = []
    for row in view.rows:
        d: dict[str, Any] = {"table": view.table.number, "variant": view.variant, "preset": view.preset,
                             "selection": view.selection, "group": row.group, "method": row.method,
                             "registry": row.registry or ""}
        d.update({f"flag_{f.key}": row.flags.get(f.key, False) for f in view.table.flag_columns})
        for c in view.columns:
            if c.show_paper:
                d[f"{c.key}_paper"] = row.paper[c.key]
            cell = row.reproduced[c.key]
            d[f"{c.key}_task"] = c.task or ""
            d[f"{c.key}_mean"] = None if cell is None else cell.mean
            d[f"{c.key}_std"] = None if cell is None else cell.std
            d[f"{c.key}_n"] = 0 if cell is None else cell.n
        out.append(d)
    return pd.DataFrame(out)


def csv_table(view: TableView) -> str:
    frame = table_frame(view)
    text = frame.select_dtypes(exclude="number").columns  # names from the paper files and records: no formulas
    frame[text] = frame[text].map(csv_cell)
    return frame.to_csv(index=False, float_format="%.6g")


def latex_table(view: TableView) -> str:
    """One table as a LaTeX booktabs ``table`` (needs \\usepackage{booktabs,amssymb})."""
    t = view.table
    nflags = len(t.flag_columns)
    spec = "l" + "c" * nflags + "".join("rr" if c.show_paper else "r" for c in view.columns)
    width = len(spec)
    caption = f"Table {t.number}: {t.caption}" + (" (synthetic stand-ins)" if view.variant == "synthetic" else "")
    caption += f". Preset {view.preset}; model selection: {_selection_text(view.selection)}."
    devices = view_devices(view)
    if devices:
        caption += f" Measured on {', '.join(devices)}."
    lines = [f"% Generated by pcfrl-bench from pcfrl_bench/resources/paper/{t.name}.yaml and the result records.",
             "% Needs \\usepackage{booktabs} and \\usepackage{amssymb}.",
             r"\begin{table}[t]", r"\centering", r"\small", f"\\caption{{{latex_text(caption)}}}",
             f"\\label{{tab:{t.name}-{view.variant}}}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    head = ["Method"] + [latex_text(f.label) for f in t.flag_columns]
    rules, sub, col = [], [""] * (1 + nflags), 2 + nflags
    for c in view.columns:
        label = latex_text(c.label)
        if c.show_paper:
            head.append(f"\\multicolumn{{2}}{{c}}{{{label}}}")
            rules.append(f"\\cmidrule(lr){{{col}-{col + 1}}}")
            sub += ["Paper", "Reproduced"]
            col += 2
        else:
            head.append(label)
            sub.append("Reproduced")
            col += 1
    lines.append(" & ".join(head) + r" \\")
    if rules:
        lines.append(" ".join(rules))
    lines.append(" & ".join(sub) + r" \\")
    lines.append(r"\midrule")
    for i, row in enumerate(view.rows):
        heading = _group_heading(view, i)
        if heading is not None:
            if i > 0:
                lines.append(r"\midrule")
            lines.append(f"\\multicolumn{{{width}}}{{l}}{{\\textit{{{latex_text(heading)}}}}} \\\\")
        cells = [latex_text(row.method)] + [r"\checkmark" if row.flags.get(f.key) else "" for f in t.flag_columns]
        for c in view.columns:
            if c.show_paper:
                p = format_paper_value(row.paper[c.key], c.decimals)
                cells.append(f"\\textbf{{{p}}}" if p and i in view.best_paper[c.key] else p)
            value, suffix = format_reproduced(row.reproduced[c.key], c.decimals, view.mark)
            value = latex_text(value)
            if value and i in view.best_reproduced[c.key]:
                value = f"\\textbf{{{value}}}"
            cells.append(value + latex_text(suffix))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def other_tasks_markdown(records: Sequence[ResultRecord], views: Sequence[TableView], preset: str,
                         selection: str) -> str:
    """The headline metric of each (task, method) whose task no table shows (e.g. a dataset you added), mean ±
    std over seeds; '' when there is none."""
    shown = {c.task for v in views for c in v.columns} | {COMPLEXITY_TASK}
    values: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in sorted(records, key=lambda r: (str(r.created or ""), str(r.path or ""))):  # the latest of a seed wins
        value = getattr(r, SELECTIONS[selection]).get(r.metric)
        if r.task not in shown and r.preset == preset and isinstance(value, (int, float)):
            values.setdefault((r.task, r.method, r.metric), {})[r.seed] = float(value)
    if not values:
        return ""
    lines = ["## Tasks of no paper table", "", "| task | method | metric | value |", "|---|---|---|---|"]
    for (task, method, metric), by_seed in sorted(values.items()):
        seeds = list(by_seed.values())
        std = float(pd.Series(seeds).std(ddof=1)) if len(seeds) > 1 else float("nan")
        value, suffix = format_reproduced(Reproduced(sum(seeds) / len(seeds), std, len(seeds), metric), 2)
        lines.append(f"| {markdown_text(task)} | {markdown_text(method)} | {markdown_text(metric)} | {value}{suffix} |")
    return "\n".join(lines) + "\n"


def combined_markdown(views: Sequence[TableView], problems: Sequence[str], variant: str, preset: str,
                      selection: str, other: str = "") -> str:
    """``TABLES.md``: every table, in order, with a header naming the preset, selection and load problems, and
    ``other`` (:func:`other_tasks_markdown`) at the end."""
    title = "Paper tables vs reproduced results" if variant == "paper" else "Paper tables on synthetic stand-in tasks"
    lines = [f"# {title}", "",
             f"Preset `{preset}`; model selection: {_selection_text(selection)}. Generated by pcfrl-bench from "
             "the paper tables in `pcfrl_bench/resources/paper` and the result records; do not edit by hand.", ""]
    if problems:
        lines += ["Records skipped:", ""] + [f"- {markdown_text(p)}" for p in problems] + [""]
    return "\n".join(lines) + "\n" + "\n".join(markdown_table(v) for v in views) + ("\n" + other if other else "")


# ------------------------------------------------------------------------------------------------ files


def load_record_folders(roots: Path | Sequence[Path], registry_hash: RegistryHash | None = None,
                        missing_ok: bool = False) -> tuple[list[ResultRecord], list[str]]:
    """The records below one folder or several, and the problems met (unreadable records, missing folders unless
    ``missing_ok``, and with ``registry_hash`` the records left out for a non-registry config, see
    :func:`split_off_registry`)."""
    records, problems = [], []
    for root in [roots] if isinstance(roots, (str, Path)) else roots:
        if Path(root).is_dir():
            found, skipped = load_records(Path(root))
            records, problems = records + found, problems + skipped
        elif not missing_ok:
            problems.append(f"{root}: no such folder, so no reproduced values from it")
    if registry_hash is not None:
        records, off_registry = split_off_registry(records, registry_hash)
        problems += off_registry_problems(off_registry)
    return records, problems


def render_all_tables(paper_dir: Path, records_root: Path | Sequence[Path], out_dir: Path, *, preset: str = "paper",
                      selection: str = "final_epoch", variant: str = "paper",
                      synthetic_map: Path | None = None, registry_hash: RegistryHash | None = None) -> list[Path]:
    """Aggregate the records below ``records_root`` (one folder or several) and write every table as
    ``<out_dir>/tables/tableNN.{md,csv,tex}`` and ``<out_dir>/TABLES.md`` (variant
    "paper"), or ``<out_dir>/tables/synthetic/tableNN.*`` and ``<out_dir>/TABLES_SYNTHETIC.md`` (variant
    "synthetic", mapping from ``synthetic_map``, default ``<paper_dir>/synthetic_map.yaml``). Returns the
    written paths. Tables with no column on a mapped task are left out of the synthetic variant.

    With ``registry_hash`` only records of each method's registry config count (see
    :func:`split_off_registry`); the others are summarised in the problems list of the combined file."""
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown table variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if selection not in SELECTIONS:
        raise ConfigError(f"Unknown model selection {selection!r}; choose one of {', '.join(SELECTIONS)}")
    paper_dir, out_dir = Path(paper_dir), Path(out_dir)
    tables = load_paper_tables(paper_dir)
    smap = None
    if variant == "synthetic":
        smap = load_synthetic_map(Path(synthetic_map) if synthetic_map else paper_dir / "synthetic_map.yaml")
    # a missing folder (no runs of yours yet) is an empty one: the written tables depend on the records alone
    records, problems = load_record_folders(records_root, registry_hash, missing_ok=True)
    agg = aggregate_records(records_frame(records), preset, selection)
    views = [build_table_view(t, agg, preset, selection, smap) for t in tables]
    views = [v for v in views if v.columns]
    table_dir = out_dir / "tables" / ("synthetic" if variant == "synthetic" else "")
    written = []
    for view in views:
        written.append(atomic_write_text(table_dir / f"{view.name}.md", markdown_table(view)))
        written.append(atomic_write_text(table_dir / f"{view.name}.csv", csv_table(view)))
        written.append(atomic_write_text(table_dir / f"{view.name}.tex", latex_table(view)))
    combined = out_dir / ("TABLES.md" if variant == "paper" else "TABLES_SYNTHETIC.md")
    other = other_tasks_markdown(records, views, preset, selection)
    written.append(atomic_write_text(combined, combined_markdown(views, problems, variant, preset, selection, other)))
    return written

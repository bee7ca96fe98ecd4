"""Where one result stands: beside its task's floors and ceiling and the same method's runs in reference records
of the same preset, and the paper's number for the task it stands in for (what ``make demo`` ends with).

Every number comes from result records, the registry (which configs count) and the transcribed paper tables;
the closing sentence is generated from those numbers by fixed rules (:func:`meaning`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io import atomic_write_text
from ..results import TRIVIAL, ResultRecord, RegistryHash, records_frame
from .claims import replace_between_markers
from .instrument import CEILING, Bounds, task_bounds
from .paper import PaperTable, SyntheticMap
from .tables import aggregate_records, load_record_folders, lookup

BOUND_LABELS = {TRIVIAL: "trivial baseline (no features)", "raw-pixels": "raw pixels (floor)",
                "random-init": "random-init trunk (floor)", CEILING: "supervised (ceiling)"}
README_START, README_END = "<!-- demo:start -->", "<!-- demo:end -->"


@dataclass(frozen=True)
class Row:
    label: str
    mean: float
    std: float = math.nan
    n: int = 1
    position: float = math.nan  # between the best floor (0) and the ceiling (1)


@dataclass(frozen=True)
class PaperNumber:
    table: int
    method: str  # the registry method of the paper's row
    task: str  # the paper task the record's task stands in for
    label: str  # the paper's column label
    value: float


@dataclass(frozen=True)
class Standing:
    record: ResultRecord
    bounds: Bounds
    reference: Row | None  # the same method's reference runs
    same_seed: float | None  # the reference record of the run's own seed (None: not stored)
    paper: tuple[PaperNumber, ...]
    reference_dir: str

    @property
    def value(self) -> float:
        return float(self.record.metrics[self.record.metric])

    def rows(self) -> list[Row]:
        b, rec = self.bounds, self.record
        rows = [Row(f"this run ({rec.method}, seed {rec.seed})", self.value, position=b.position(self.value))]
        for method, label in BOUND_LABELS.items():
            if b.seeds[method]:
                rows.append(Row(label, b.values[method], b.stds[method], b.seeds[method], b.position(b.values[method])))
        if self.reference is not None:
            rows.append(self.reference)
        rows += [Row(f"paper: {p.method} on {p.task} (Table {p.table})", p.value) for p in self.paper]
        return rows


def paper_numbers(method: str, task: str, metric: str, tables: Sequence[PaperTable], smap: SyntheticMap
                  ) -> tuple[PaperNumber, ...]:
    """The paper's values of ``method`` on each paper task that ``task`` stands in for (``task`` itself when it
    is a paper task), first table first, one per paper task."""
    stands_for = {paper for paper, synthetic in smap.tasks.items() if synthetic == task} or {task}
    found: dict[str, PaperNumber] = {}
    for table in tables:
        for column in table.columns:
            if column.task not in stands_for or column.task in found:
                continue
            if smap.metric_for(task, column.metric) != metric and column.metric != metric:
                continue
            for row in table.rows:
                value = row.values.get(column.key)
                if row.registry == method and value is not None:
                    found[column.task] = PaperNumber(table.number, method, column.task, column.label, float(value))
                    break
    return tuple(found.values())


def standing(record: ResultRecord, reference_dir: Path, registry_hash: RegistryHash | None,
             tables: Sequence[PaperTable], smap: SyntheticMap) -> Standing | None:
    """``record`` among the reference records below ``reference_dir`` (its task and preset, registry configs
    only with ``registry_hash``); None when they hold no floor or ceiling of that task and preset."""
    found, _ = load_record_folders(reference_dir, registry_hash)
    found = [r for r in found if r.task == record.task and r.preset == record.preset]
    agg = aggregate_records(records_frame(found), record.preset)
    bounds = task_bounds(agg, record.task, record.metric, record.higher_is_better)
    if not any(bounds.seeds[m] for m in BOUND_LABELS if m != TRIVIAL):
        return None
    reference = None
    same = lookup(agg, record.method, record.task, [record.metric])
    if same is not None:
        reference = Row(f"{record.method}, reference runs", same.mean, same.std, same.n, bounds.position(same.mean))
    own = Path(record.path).resolve() if record.path else None
    twin = [r for r in found if r.method == record.method and r.seed == record.seed
            and (r.path is None or Path(r.path).resolve() != own)]
    same_seed = float(twin[0].metrics[record.metric]) if twin else None
    return Standing(record, bounds, reference, same_seed,
                    paper_numbers(record.method, record.task, record.metric, tables, smap), str(reference_dir))


def _num(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.2f}"


def _spread(row: Row) -> str:
    if row.n <= 1 or math.isnan(row.std):
        return ""
    return f"± {row.std:.2f} ({row.n} seeds)"


def _beats(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def meaning(s: Standing) -> str:
    """One sentence generated from the numbers: the run against the best floor and the ceiling, against the
    reference runs of its method, and how the paper's number compares."""
    b, rec, v = s.bounds, s.record, s.value
    floor_name = BOUND_LABELS[b.floor_method].split(" (")[0] if b.floor_method else "the floors"
    if math.isnan(b.ceiling) or math.isnan(b.floor):
        where = f"this run ({v:.2f}) has no complete floor and ceiling to stand between"
    elif _beats(v, b.ceiling, b.higher_is_better):
        where = f"this run ({v:.2f}) beats the supervised ceiling ({b.ceiling:.2f})"
    elif _beats(v, b.floor, b.higher_is_better):
        where = (f"this run ({v:.2f}) is above the best floor ({floor_name}, {b.floor:.2f}) and "
                 f"{b.position(v):.0%} of the way to the supervised ceiling ({b.ceiling:.2f}), so pretraining "
                 "gave features that carry what the task asks for")
    else:
        where = (f"this run ({v:.2f}) is below the best floor ({floor_name}, {b.floor:.2f}; ceiling "
                 f"{b.ceiling:.2f}), so at this budget {rec.method}'s features do worse on {rec.task} than "
                 f"{floor_name} do")
    if b.learnable is False and b.requirement is not None:
        where += (f" (the ceiling misses this task's bar '{b.requirement.text()}' at this preset, so differences "
                  "here say little)")
    if s.same_seed is not None and s.same_seed == v:
        check = f"it equals the reference record of seed {rec.seed} exactly"
    elif s.reference is not None and s.reference.n > 1 and not math.isnan(s.reference.std):
        spread = max(2 * s.reference.std, 0.01)
        inside = abs(v - s.reference.mean) <= spread
        check = (f"it lies {'within' if inside else 'outside'} two standard deviations of the reference "
                 f"{rec.method} runs ({s.reference.mean:.2f} ± {s.reference.std:.2f}, {s.reference.n} seeds)"
                 + ("" if inside else ", so something differs from them (config, torch build or threads)"))
    else:
        check = f"no reference {rec.method} runs of this preset are stored to check it against"
    paper = ""
    if s.paper:
        values = " and ".join(f"{p.value:.2f} on {p.task}" for p in s.paper)
        paper = (f"; the paper's {values} were measured on real faces at the paper's budget, so they say what "
                 f"{rec.method} reaches there, not what this run should reach")
    return f"{where[0].upper()}{where[1:]}; {check}{paper}."


def standing_markdown(s: Standing) -> str:
    """The table and its sentence (Markdown, at most 80 columns wide for the usual names)."""
    rec, b = s.record, s.bounds
    arrow = "↑" if b.higher_is_better else "↓"
    lines = [f"{rec.method} on {rec.task}, preset {rec.preset}: {rec.metric} {arrow} "
             f"(floors, ceiling and reference runs: {s.reference_dir})", "",
             f"| result | {rec.metric} | spread | position |", "|---|---:|---|---:|"]
    for row in s.rows():
        lines.append(f"| {row.label} | {_num(row.mean)} | {_spread(row)} | "
                     f"{'' if math.isnan(row.position) else f'{row.position:.2f}'} |")
    lines += ["", "position: 0 = best floor, 1 = supervised ceiling.", "", meaning(s)]
    return "\n".join(lines) + "\n"


def write_readme_block(readme: Path, block: str) -> Path:
    """Fill the README's ``<!-- demo:start -->`` ... ``<!-- demo:end -->`` section with ``block``."""
    return atomic_write_text(readme, replace_between_markers(readme.read_text(), block, README_START, README_END))


def standing_text(record: ResultRecord, reference_dir: Path) -> str | None:
    """:func:`standing_markdown` of ``record`` against the registry-config records below ``reference_dir``, the
    package's paper tables and synthetic map; None when no floor or ceiling of its task and preset is stored."""
    from ..resolution import registry_result_hash
    from .paper import load_paper_tables, load_synthetic_map

    found = standing(record, Path(reference_dir), registry_result_hash, load_paper_tables(), load_synthetic_map())
    return None if found is None else standing_markdown(found)

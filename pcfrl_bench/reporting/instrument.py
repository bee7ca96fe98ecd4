"""Is the instrument valid? Each task's floors (trivial baseline, raw pixels, random init) and ceiling (the same
trunk trained with the task's labels), and whether the ceiling clears its floor by the required margin.

A method's number means something only between these bounds: ``position`` places it on the floor (0) to
ceiling (1) scale. Pure functions over the aggregated records (:func:`..tables.aggregate_records`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from ..results import TRIVIAL  # pseudo-method: the protocol's feature-free baseline (a record's "trivial")
from .escape import markdown_text
FLOORS = (TRIVIAL, "raw-pixels", "random-init")
CEILING = "supervised"
BOUNDS = (*FLOORS, CEILING)


@dataclass(frozen=True)
class Requirement:
    """How far the ceiling must clear the trivial baseline for a task to count as learnable."""

    metric: str
    kind: Literal["above_trivial", "fraction_of_trivial", "at_least"]
    value: float
    higher_is_better: bool = True

    def text(self) -> str:
        if self.kind == "above_trivial":
            return f"supervised >= trivial + {self.value:g}"
        if self.kind == "fraction_of_trivial":
            return f"supervised <= {self.value:g} x trivial"
        return f"supervised >= {self.value:g}"

    def met(self, ceiling: float, trivial: float) -> bool:
        if self.kind == "above_trivial":
            return ceiling >= trivial + self.value
        if self.kind == "fraction_of_trivial":
            return ceiling <= self.value * trivial
        return ceiling >= self.value


# The learnability bar of the synthetic tasks at the reference preset (README "A valid instrument").
REQUIREMENTS: dict[str, Requirement] = {
    "synth-fer": Requirement("accuracy", "above_trivial", 40.0),  # chance (majority class) + 40 points
    "synth-posecls": Requirement("accuracy", "above_trivial", 40.0),
    "synth-hpe": Requirement("mae", "fraction_of_trivial", 0.5, higher_is_better=False),  # half the median predictor
    "synth-au": Requirement("f1", "above_trivial", 15.0),  # always-on F1 + 15 points
    "synth-fr": Requirement("accuracy", "at_least", 80.0),  # 10-fold cross-pose verification accuracy
}


@dataclass(frozen=True)
class Bounds:
    """One task's measured bounds (means over seeds; NaN where not run) and its learnability verdict."""

    task: str
    metric: str
    higher_is_better: bool
    values: dict[str, float]  # bound method -> mean
    stds: dict[str, float]
    seeds: dict[str, int]
    requirement: Requirement | None

    @property
    def floor(self) -> float:
        """The best floor: a method must beat every feature-free, pixel and random-trunk baseline."""
        known = [v for k, v in self.values.items() if k in FLOORS and not math.isnan(v)]
        if not known:
            return math.nan
        return max(known) if self.higher_is_better else min(known)

    @property
    def floor_method(self) -> str:
        """The name of the best floor ("" where none was measured)."""
        known = {k: v for k, v in self.values.items() if k in FLOORS and not math.isnan(v)}
        if not known:
            return ""
        return (max if self.higher_is_better else min)(known, key=known.__getitem__)

    @property
    def ceiling(self) -> float:
        return self.values.get(CEILING, math.nan)

    @property
    def learnable(self) -> bool | None:
        """Whether the ceiling meets the requirement (None: no requirement or a bound not measured)."""
        trivial = self.values.get(TRIVIAL, math.nan)
        if self.requirement is None or math.isnan(self.ceiling) or math.isnan(trivial):
            return None
        return self.requirement.met(self.ceiling, trivial)

    def position(self, value: float) -> float:
        """``value`` on the floor (0) to ceiling (1) scale; NaN where the bounds are missing or equal."""
        span = self.ceiling - self.floor
        return (value - self.floor) / span if span and not math.isnan(span) else math.nan


def _mean(agg: pd.DataFrame, method: str, task: str, metric: str) -> tuple[float, float, int]:
    row = agg[(agg["method"] == method) & (agg["task"] == task) & (agg["metric"] == metric)]
    if row.empty:
        return math.nan, math.nan, 0
    r = row.iloc[0]
    return float(r["mean"]), float(r["std"]), int(r["n"])


def task_bounds(agg: pd.DataFrame, task: str, metric: str, higher_is_better: bool) -> Bounds:
    """The bounds of ``task`` on ``metric`` from aggregated records (``trivial`` rows included)."""
    values, stds, seeds = {}, {}, {}
    for method in BOUNDS:
        values[method], stds[method], seeds[method] = _mean(agg, method, task, metric)
    return Bounds(task, metric, higher_is_better, values, stds, seeds, REQUIREMENTS.get(task))


def bounds_frame(agg: pd.DataFrame, tasks: dict[str, tuple[str, bool]], methods: tuple[str, ...] = ()) -> pd.DataFrame:
    """One row per task: every bound (mean, std), the requirement and verdict, and each of ``methods`` with its
    position between floor and ceiling. ``tasks`` maps a task to (primary metric, higher is better)."""
    rows = []
    for task, (metric, higher) in tasks.items():
        b = task_bounds(agg, task, metric, higher)
        row = {"task": task, "metric": metric, "higher_is_better": higher}
        for method in BOUNDS:
            row[method], row[f"{method}_std"], row[f"{method}_n"] = b.values[method], b.stds[method], b.seeds[method]
        row["floor"], row["floor_method"], row["ceiling"] = b.floor, b.floor_method, b.ceiling
        row["requirement"] = b.requirement.text() if b.requirement else ""
        row["learnable"] = b.learnable
        for method in methods:
            mean, std, n = _mean(agg, method, task, metric)
            row[method], row[f"{method}_std"], row[f"{method}_n"] = mean, std, n
            row[f"{method}_position"] = b.position(mean)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(mean: float, std: float, n: int, decimals: int = 2) -> str:
    if n == 0 or math.isnan(mean):
        return "–"
    spread = "" if math.isnan(std) else f" ± {std:.{decimals}f}"
    return f"{mean:.{decimals}f}{spread} (n={n})"


def bounds_markdown(frame: pd.DataFrame, methods: tuple[str, ...] = ()) -> str:
    """The floor/ceiling table as Markdown: bounds, requirement, verdict, then methods with their position."""
    head = ["task (metric)", *BOUNDS, "requirement", "learnable", *methods]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    verdict = {True: "yes", False: "**no**", None: "not measured"}
    for _, r in frame.iterrows():
        arrow = "↑" if r["higher_is_better"] else "↓"
        cells = [f"{markdown_text(r['task'])} ({markdown_text(r['metric'])} {arrow})"]
        cells += [_cell(r[m], r[f"{m}_std"], r[f"{m}_n"]) for m in BOUNDS]
        cells += [r["requirement"] or "–", verdict[r["learnable"] if r["learnable"] in (True, False) else None]]
        for m in methods:
            pos = r[f"{m}_position"]
            cells.append(_cell(r[m], r[f"{m}_std"], r[f"{m}_n"]) + ("" if math.isnan(pos) else f" [{pos:.2f}]"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _beats(value: float, bound: float, higher_is_better: bool) -> bool:
    return value > bound if higher_is_better else value < bound


def instrument_reading(frame: pd.DataFrame, methods: tuple[str, ...]) -> list[str]:
    """What the floor/ceiling table says, as sentences generated from it (the README's reading; no hand-written
    conclusions): where the instrument is valid, which methods beat the best floor there, and which beat the
    random trunk (pretraining changed the representation). Comparisons of means; the claims carry the CIs."""
    def fmt(r: pd.Series, method: str) -> str:
        return f"{method} {r[method]:.2f}"

    valid = frame[frame["learnable"] == True]  # noqa: E712  (None = not measured)
    invalid = frame[frame["learnable"] == False]  # noqa: E712
    lines = []
    if len(valid):
        lines.append(f"The instrument is valid (the ceiling clears its bar) on {markdown_text(', '.join(valid['task']))}.")
    for _, r in invalid.iterrows():
        lines.append(f"It is **not valid** on {markdown_text(r['task'])}: supervised {r[CEILING]:.2f} misses '{r['requirement']}', "
                     "so that task's comparisons are inconclusive by rule.")
    above_floor, above_random = [], []
    for _, r in valid.iterrows():
        ran = [m for m in methods if not math.isnan(r[m])]
        best = [fmt(r, m) for m in ran if _beats(r[m], r["floor"], r["higher_is_better"])]
        above_floor.append(f"{markdown_text(r['task'])}: " + (", ".join(best) if best else "none") +
                           f" (best floor {r['floor_method']} {r['floor']:.2f})")
        moved = [fmt(r, m) for m in ran if not math.isnan(r["random-init"])
                 and _beats(r[m], r["random-init"], r["higher_is_better"])]
        above_random.append(f"{markdown_text(r['task'])}: " + (", ".join(moved) if moved else "none") +
                            f" (random-init {r['random-init']:.2f})")
    if above_floor:
        lines.append("Methods above the best floor, per valid task (means): " + "; ".join(above_floor) + ".")
        lines.append("Methods above their random-init trunk (pretraining changed the representation): "
                     + "; ".join(above_random) + ".")
    return lines

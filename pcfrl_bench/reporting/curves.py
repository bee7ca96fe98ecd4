"""Learning curves: each task's metric against pretraining steps, one line per method, beside the task's floors and
ceiling taken from reference records of the same preset (what ``pcfrl-bench curves`` draws; the points are measured
by :mod:`pcfrl_bench.curves`).

A curve file holds the points of one (method, task, preset, seed) under ``<folder>/curves`` at the path a record of it
would have there (:func:`~pcfrl_bench.results.record_path`: a config other than the registry's adds its hash), with
the config hash it was measured with. Everything here but the file writes is pure; the figure is drawn by
:func:`pcfrl_bench.reporting.figures.plot_learning_curves` from the :class:`Panel` list.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inputs import read_json
from ..io import atomic_write_json
from ..results import ResultRecord, record_path, records_frame
from .instrument import BOUNDS, CEILING, TRIVIAL, task_bounds
from .tables import aggregate_records

CURVE_KIND = "learning-curve"
BAND_LABELS = {TRIVIAL: "trivial baseline", "raw-pixels": "floor: raw pixels", "random-init": "floor: random-init",
               CEILING: "ceiling: supervised"}


@dataclass(frozen=True)
class CurvePoint:
    """One evaluated snapshot."""

    epoch: int  # pretraining epochs done (0: the initial weights)
    step: int  # optimiser steps done
    value: float  # the task's headline metric (final probe epoch)
    metrics: dict[str, float]  # every metric of the evaluation
    checkpoint_digest: str  # of the evaluated trunk's weights (part of the feature cache's key)


@dataclass
class LearningCurve:
    """The points of one method on one task along one pretraining."""

    method: str
    task: str
    preset: str
    seed: int
    metric: str
    higher_is_better: bool
    config_hash: str  # the run config's result hash (pretrain.snapshot_every is not part of it)
    registry_config: bool  # made with the registry's config of method and task
    overrides: list[str]
    pretrain_hash: str  # of the pretraining whose snapshots were evaluated (its folder in the cache)
    points: list[CurvePoint] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"kind": CURVE_KIND, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, data: Any, path: Path | None = None) -> LearningCurve:
        """A curve from its JSON object; :class:`ValueError` names the file and what is wrong."""
        where = f"{path}: " if path is not None else ""
        if not isinstance(data, dict) or data.get("kind") != CURVE_KIND:
            raise ValueError(f"{where}not a learning curve (a JSON object with kind {CURVE_KIND!r} is expected)")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names - {"kind"})
        if missing or unknown:
            raise ValueError(f"{where}learning curve with missing fields {missing} or unknown fields {unknown}")
        try:
            points = [CurvePoint(**p) for p in data["points"]]
        except TypeError as err:
            raise ValueError(f"{where}a point of the learning curve is malformed ({err})") from None
        return cls(**{**{k: data[k] for k in names}, "points": points})

    def epochs(self) -> dict[int, CurvePoint]:
        return {p.epoch: p for p in self.points}

    def add(self, point: CurvePoint) -> None:
        """Add or replace the point of ``point.epoch``, keeping the points in epoch order."""
        self.points = sorted([p for p in self.points if p.epoch != point.epoch] + [point], key=lambda p: p.epoch)


def curve_path(root: Path, curve: LearningCurve) -> Path:
    return record_path(root, curve.method, curve.task, curve.preset, curve.seed,
                       None if curve.registry_config else curve.config_hash)


def write_curve(root: Path, curve: LearningCurve) -> Path:
    """Write ``curve`` atomically under ``root``; returns its path."""
    return atomic_write_json(curve_path(root, curve), curve.to_json())


def read_curve(path: Path) -> LearningCurve:
    """One curve file (:class:`ValueError` or OSError with the reason when it is not one)."""
    return LearningCurve.from_json(read_json(Path(path)), Path(path))


def load_curves(root: Path) -> tuple[list[LearningCurve], list[str]]:
    """Every curve file below ``root`` and the problems met (an unreadable file is named and skipped)."""
    curves, problems = [], []
    for path in sorted(Path(root).rglob("*.json")):
        try:
            curves.append(read_curve(path))
        except (OSError, ValueError) as err:
            problems.append(str(err) if str(err).startswith(str(path)) else f"{path}: {err}")
    return curves, problems


# ---------------------------------------------------------------------------------------------- the figure's data


@dataclass(frozen=True)
class Band:
    """A floor or the ceiling: mean ± std over the reference seeds (std NaN for one seed)."""

    method: str  # trivial, raw-pixels, random-init, supervised
    label: str
    mean: float
    std: float
    n: int


@dataclass(frozen=True)
class Line:
    label: str
    steps: tuple[int, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Panel:
    """One task: its curves and bands; lower-is-better metrics are drawn with the axis inverted (better is up)."""

    task: str
    metric: str
    higher_is_better: bool
    lines: tuple[Line, ...]
    bands: tuple[Band, ...]

    @property
    def ylabel(self) -> str:
        if self.higher_is_better:
            return f"{self.metric} ↑ (higher is better)"
        return f"{self.metric} ↓ (lower is better; axis inverted)"


def _line_label(curve: LearningCurve, several_seeds: bool) -> str:
    label = curve.method if curve.registry_config else f"{curve.method} ({curve.config_hash[:8]})"
    return f"{label}, seed {curve.seed}" if several_seeds else label


def curve_panels(curves: Sequence[LearningCurve], records: Sequence[ResultRecord], preset: str) -> list[Panel]:
    """One panel per task: a line per curve of ``preset``, and a band per floor and the ceiling measured in
    ``records`` (reference records: those of ``preset`` count). Tasks and lines in name order, so the same curves
    give the same figure whichever order they were measured or read in."""
    curves = sorted((c for c in curves if c.preset == preset and c.points),
                    key=lambda c: (c.task, c.method, c.seed, c.config_hash))
    agg = aggregate_records(records_frame([r for r in records if r.preset == preset]), preset)
    panels = []
    for task in dict.fromkeys(c.task for c in curves):
        mine = [c for c in curves if c.task == task]
        first = mine[0]
        bounds = task_bounds(agg, task, first.metric, first.higher_is_better)
        several = len({c.seed for c in mine}) > 1
        lines = tuple(Line(_line_label(c, several), tuple(p.step for p in c.points), tuple(p.value for p in c.points))
                      for c in mine)
        bands = tuple(Band(m, BAND_LABELS[m], bounds.values[m], bounds.stds[m], bounds.seeds[m])
                      for m in BOUNDS if bounds.seeds[m] and not math.isnan(bounds.values[m]))
        panels.append(Panel(task, first.metric, first.higher_is_better, lines, bands))
    return panels


def curves_caption(panels: Sequence[Panel], preset: str) -> str:
    """One line saying what the figure shows (the figures' index)."""
    tasks = ", ".join(p.task for p in panels)
    methods = ", ".join(dict.fromkeys(line.label for p in panels for line in p.lines))
    return (f"learning curves, {preset} preset: each task's metric ({tasks}) against pretraining steps for {methods}, "
            "one point per trunk snapshot kept along one pretraining; floors (trivial baseline, raw pixels, "
            "random-init) and the supervised ceiling as bands (mean ± std over the reference seeds); lower-is-better "
            "metrics on an inverted axis")


__all__ = ["CURVE_KIND", "Band", "CurvePoint", "LearningCurve", "Line", "Panel", "curve_panels", "curve_path",
           "curves_caption", "load_curves", "read_curve", "write_curve"]

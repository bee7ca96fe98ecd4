"""Grids of runs (methods x tasks x seeds) and regression checks against stored values."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import yaml
from rich.console import Console

from .config import PRESETS, SEED_MAX, load_yaml
from .errors import ConfigError, MalformedFileError
from .inputs import quote
from .interrupt import run_in_processes
from .io import atomic_write_text
from .progress import reporting, stage
from .results import ResultRecord, read_record, record_path
from .runner import RunOptions, RunPaths, pretrain_dir, resolve, run


@dataclass(frozen=True)
class Cell:
    """One (method, task, preset, seed) run with its overrides."""

    method: str
    task: str
    preset: str
    seed: int
    overrides: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method} x {self.task} ({self.preset}, seed {self.seed})"


def grid_cells(methods: Iterable[str], tasks: Iterable[str], seeds: Iterable[int], preset: str,
               overrides: Iterable[str] = ()) -> list[Cell]:
    """The cross product, ordered so that each (method, seed) pretrains once and its tasks reuse it."""
    return [Cell(m, t, preset, s, tuple(overrides)) for m in methods for s in seeds for t in tasks]


def stored_record(cell: Cell, out_dir: Path) -> ResultRecord | None:
    """The stored record of ``cell`` if it exists and was made with the same resolved config (a non-registry
    config is also found under the plain name that records had before they were named by their hash)."""
    resolved = resolve(cell.method, cell.task, cell.preset, cell.seed, overrides=cell.overrides)
    wanted = resolved.config.result_hash()
    for variant in [None] if resolved.is_registry else [wanted, None]:
        path = record_path(out_dir, cell.method, cell.task, cell.preset, cell.seed, variant)
        try:
            record = read_record(path)
        except (OSError, TypeError, ValueError):
            continue
        if record.config_hash == wanted:
            return record
    return None


def _run_group(cells: list[Cell], paths: RunPaths, device: str, threads: int = 0,
               options: RunOptions | None = None, restarted: set[Path] | None = None) -> list[ResultRecord]:
    """Run the cells of one (method, seed) group in order (the first pretrains, the others reuse).

    ``threads`` > 0 sets torch's CPU threads (parallel groups share the cores instead of oversubscribing them).
    ``options`` carries ``resume``/``restart`` (progress bars are always off here); a restart discards each
    pretraining folder once, the first time a cell needs it (``restarted`` remembers which ones).
    """
    if threads:
        torch.set_num_threads(threads)
    console = Console(quiet=True)
    options = options or RunOptions()
    restarted = set() if restarted is None else restarted
    out = []
    for cell in cells:
        resolved = resolve(cell.method, cell.task, cell.preset, cell.seed, device, cell.overrides)
        folder = pretrain_dir(resolved, paths.cache_dir)
        cell_options = RunOptions(resume=options.resume, restart=options.restart and folder not in restarted,
                                  progress=False, unreadable=options.unreadable)
        restarted.add(folder)
        out.append(run(resolved, paths, cell_options, console))
    return out


def run_grid(cells: list[Cell], paths: RunPaths, *, jobs: int = 1, device: str = "auto", skip_existing: bool = True,
             console: Console | None = None, options: RunOptions | None = None) -> tuple[list[ResultRecord], int]:
    """Run every cell not already stored; returns (records of the cells run, number skipped).

    Cells are grouped by (method, seed) so a pretraining is never done twice, and groups run in
    ``jobs`` processes in parallel.
    """
    console = console or Console(stderr=True)
    todo = [c for c in cells if not (skip_existing and stored_record(c, paths.out_dir))]
    skipped = len(cells) - len(todo)
    groups: dict[tuple[str, int, str], list[Cell]] = {}
    for cell in todo:
        groups.setdefault((cell.method, cell.seed, cell.preset), []).append(cell)
    records: list[ResultRecord] = []
    if skipped:
        console.print(f"grid: {skipped} cells already stored, {len(todo)} to run", highlight=False)
    with reporting(console), stage("grid", len(todo), "cells", keep=True, interval=0) as bar:
        if jobs <= 1:
            restarted: set[Path] = set()
            for group in groups.values():
                for cell in group:
                    records += _run_group([cell], paths, device, options=options, restarted=restarted)
                    bar.advance(1, cell.label)
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            calls = [(g, paths, device, threads, options) for g in groups.values()]
            # forked workers; Ctrl-C / SIGTERM stops every one of them (interrupt.run_in_processes)
            done = run_in_processes(_run_group, calls, jobs, on_done=lambda i, _: bar.advance(
                len(calls[i][0]), calls[i][0][-1].label))
            records += [record for group_records in done for record in group_records]
    return records, skipped


@dataclass
class Expectation:
    """A checked cell: its metric must stay within ``tolerance`` of ``value``."""

    method: str
    task: str
    preset: str
    seed: int
    metric: str
    value: float
    tolerance: float
    subsets: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    threads: int = 0  # torch CPU threads of the run (0 = torch's default): float sums, hence results, depend on it

    @property
    def cell(self) -> Cell:
        return Cell(self.method, self.task, self.preset, self.seed, tuple(self.overrides))


def load_expected(path: Path) -> list[Expectation]:
    """``pcfrl_bench/resources/expected.yaml``: a list under ``cells:`` of expectations (errors name file and entry)."""
    data = load_yaml(path)
    entries = data.get("cells")
    if not isinstance(entries, list):
        raise MalformedFileError(path, None, "expected a list under 'cells:'")
    out = []
    for i, entry in enumerate(entries, 1):
        try:
            exp = Expectation(**entry)
            exp.value, exp.tolerance, exp.seed = float(exp.value), float(exp.tolerance), int(exp.seed)
            exp.threads = int(exp.threads)
        except (TypeError, ValueError) as exc:
            raise MalformedFileError(path, None, f"entry {i}: {exc}") from None
        if exp.preset not in PRESETS or not 0 <= exp.tolerance < math.inf or not math.isfinite(exp.value):
            raise MalformedFileError(path, None, f"entry {i}: bad preset {quote(exp.preset)}, or a tolerance or "
                                                 "value that is not a finite number (tolerance >= 0)")
        if not (0 <= exp.threads <= 1024 and abs(exp.seed) <= SEED_MAX):
            raise MalformedFileError(path, None, f"entry {i}: threads {quote(exp.threads)} outside [0, 1024] or "
                                                 f"seed {exp.seed} outside [{-SEED_MAX - 1}, {SEED_MAX}]")
        out.append(exp)
    return out


@dataclass
class CheckResult:
    expectation: Expectation
    measured: float | None
    passed: bool
    note: str = ""

    @property
    def delta(self) -> float | None:
        return None if self.measured is None else self.measured - self.expectation.value


def compare(expectation: Expectation, record: ResultRecord) -> CheckResult:
    """Pass when the record's metric is within the tolerance of the expected value."""
    value = record.metrics.get(expectation.metric)
    if value is None or not math.isfinite(float(value)):
        return CheckResult(expectation, None, False, f"metric {expectation.metric!r} missing or not finite")
    ok = abs(float(value) - expectation.value) <= expectation.tolerance
    return CheckResult(expectation, float(value), ok)


def check_expected(expectations: list[Expectation], cache_dir: Path, data_root: Path, *, subset: str | None = None,
                   device: str = "auto", on_result: Callable[[CheckResult], None] | None = None) -> list[CheckResult]:
    """Re-run the expected cells (fresh records in a temporary folder) and compare them with the stored values."""
    chosen = [e for e in expectations if subset is None or subset in e.subsets]
    if subset is not None and not chosen:
        raise ConfigError(f"no expected cell is in subset {subset!r}")
    results = []
    with tempfile.TemporaryDirectory(prefix="pcfrl-check-") as tmp:
        paths = RunPaths(Path(tmp), cache_dir, data_root)
        threads_before = torch.get_num_threads()
        for exp in chosen:
            record = _run_group([exp.cell], paths, device, exp.threads)[0]
            torch.set_num_threads(threads_before)
            result = compare(exp, record)
            results.append(result)
            if on_result:
                on_result(result)
    return results


def update_expected(path: Path, results: list[CheckResult]) -> None:
    """Rewrite ``path`` with the measured values of ``results`` (other cells unchanged)."""
    measured = {(r.expectation.cell, r.expectation.metric): r.measured for r in results if r.measured is not None}
    entries = []
    for exp in load_expected(path):
        value = measured.get((exp.cell, exp.metric))
        if value is not None:
            exp.value = round(value, 4)
        entries.append(asdict(exp))
    atomic_write_text(path, yaml.safe_dump({"cells": entries}, sort_keys=False))

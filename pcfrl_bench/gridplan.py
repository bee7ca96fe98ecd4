"""The plan of a grid before anything runs: cells grouped by the pretraining they share, shards, the dry-run
view (records and checkpoints already there), one ``pcfrl-bench run`` command per cell, and an estimate of the
pretraining's device hours from measured (or the paper's) seconds per step.

A *pretraining group* is the cells whose runs use one checkpoint folder (same implementation and pretraining
hash: method parameters, model, data, schedule, seed; not the task). It is the unit of a cluster job and of a
shard, so no pretraining is ever split over jobs or machines.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from .config import DataConfig, config_hash, to_plain
from .errors import ConfigError, PcfrlError
from .grid import Cell, stored_record
from .pretraining import BACKBONE_FILE, pretrain_dir
from .resolution import resolve
from .results import COMPLEXITY_TASK, load_records
from .train import CHECKPOINT, read_log


@dataclass(frozen=True)
class PlannedCell:
    """A cell with the hashes that name its record and its pretraining."""

    cell: Cell
    config_hash: str  # the record's config_hash (RunConfig.result_hash)
    pretrain_hash: str


@dataclass
class PretrainGroup:
    """Cells sharing one pretraining checkpoint folder, in grid order (the first pretrains, the others reuse)."""

    run_dir: Path
    implementation: str
    epochs: int
    batch_size: int
    data: DataConfig
    cells: list[PlannedCell] = field(default_factory=list)

    @property
    def data_key(self) -> str:
        """The pretraining data's config hash: groups with the same one cost about the same to train."""
        return config_hash(to_plain(self.data))

    @property
    def sort_key(self) -> tuple[str, int, str, int, str]:
        first = self.cells[0]
        return self.data_key, self.epochs, first.cell.method, first.cell.seed, first.pretrain_hash


def plan_grid(cells: Iterable[Cell], cache_dir: Path) -> list[PretrainGroup]:
    """Resolve every cell (an unknown name or a bad override fails here, before anything runs) and group the
    cells by pretraining folder. Groups are ordered by (pretraining data, epochs, method, seed, pretraining hash),
    whatever the order of the names given, so shards are the same on every machine and pretrainings of one
    kind (one data source and schedule, about one cost) are dealt evenly over the shards."""
    groups: dict[Path, PretrainGroup] = {}
    for cell in cells:
        resolved = resolve(cell.method, cell.task, cell.preset, cell.seed, overrides=cell.overrides)
        cfg, impl = resolved.config, resolved.method.implementation
        run_dir = pretrain_dir(resolved, cache_dir)
        group = groups.setdefault(run_dir, PretrainGroup(run_dir, impl, cfg.pretrain.epochs, cfg.pretrain.batch_size,
                                                         cfg.data))
        group.cells.append(PlannedCell(cell, cfg.result_hash(), cfg.pretrain_hash(impl)))
    return sorted(groups.values(), key=lambda g: g.sort_key)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (1 <= i <= n) -> (i, n)."""
    index, sep, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i = n = 0
    if not sep or n < 1 or not 1 <= i <= n:
        raise ConfigError(f"--shard expects i/n with 1 <= i <= n, e.g. 1/4; got {text!r}")
    return i, n


def shard(groups: Sequence[PretrainGroup], index: int, count: int) -> list[PretrainGroup]:
    """Shard ``index`` of ``count`` (1-based): every ``count``-th pretraining group of the ordered plan, so the
    shards are disjoint, their union is the grid, each holds whole groups (no pretraining is split), and the
    numbers of pretrainings of each kind (data and schedule) in two shards differ by at most one."""
    return list(groups[index - 1::count])


def planned_cells(groups: Iterable[PretrainGroup]) -> list[PlannedCell]:
    return [p for g in groups for p in g.cells]


def epochs_done(group: PretrainGroup) -> int | None:
    """Epochs of the group's pretraining done so far, from the folder's files without loading a checkpoint: None
    without a checkpoint, all of them once ``backbone.pt`` is there (written when a pretraining completes), else
    the epochs in the log of the interrupted run (it resumes from its last checkpoint, at most
    ``pretrain.checkpoint_every`` epochs earlier)."""
    if (group.run_dir / BACKBONE_FILE).is_file():
        return group.epochs
    if (group.run_dir / CHECKPOINT).is_file():
        log = read_log(group.run_dir)
        return int(log[-1].get("epoch", 0)) if log else 0
    return None


def checkpoint_progress(group: PretrainGroup) -> str:
    """``complete``, ``epoch e/N`` (interrupted) or ``-`` (no checkpoint)."""
    done = epochs_done(group)
    if done is None:
        return "-"
    return "complete" if (group.run_dir / BACKBONE_FILE).is_file() else f"epoch {done}/{group.epochs}"


@dataclass(frozen=True)
class DryRunRow:
    job: int | None  # the array index of the cell's job (None: its group has nothing left to run)
    planned: PlannedCell
    record: Path | None
    checkpoint: str


def dry_run_rows(groups: Sequence[PretrainGroup], todo: Sequence[PretrainGroup], out_dir: Path) -> list[DryRunRow]:
    """One row per cell of ``groups``: its job among ``todo`` (:func:`groups_to_run`), hashes, stored record (same
    config) and pretraining checkpoint state."""
    jobs = {g.run_dir: i for i, g in enumerate(todo)}
    rows = []
    for group in groups:
        progress = checkpoint_progress(group)
        for p in group.cells:
            record = stored_record(p.cell, out_dir)
            rows.append(DryRunRow(jobs.get(group.run_dir), p, record.path if record else None, progress))
    return rows


def dry_run_table(rows: Sequence[DryRunRow]) -> Table:
    table = Table(title="Grid (dry run: nothing runs)", title_justify="left")
    for col in ("job", "method", "task", "seed", "preset", "config", "pretraining", "record", "checkpoint"):
        table.add_column(col, no_wrap=True)
    for r in rows:
        c = r.planned.cell
        table.add_row("-" if r.job is None else str(r.job), c.method, c.task, str(c.seed), c.preset,
                      r.planned.config_hash[:8], r.planned.pretrain_hash[:8], "stored" if r.record else "-", r.checkpoint)
    return table


def groups_to_run(groups: Sequence[PretrainGroup], out_dir: Path, rerun: bool = False) -> list[PretrainGroup]:
    """The groups with their cells whose record is not stored yet (all cells with ``rerun``); empty groups left out."""
    out = []
    for g in groups:
        cells = g.cells if rerun else [p for p in g.cells if stored_record(p.cell, out_dir) is None]
        if cells:
            out.append(PretrainGroup(g.run_dir, g.implementation, g.epochs, g.batch_size, g.data, cells))
    return out


def run_command(cell: Cell, out: Path | None = None, *, cache_dir: Path | None = None, data_root: Path | None = None,
                device: str = "auto", threads: int = 0, resume: bool = False, restart: bool = False,
                launcher: Sequence[str] = ("pcfrl-bench",)) -> list[str]:
    """The ``run`` command line of ``cell`` (argv); paths left out are the defaults of the machine it runs on.
    ``launcher`` is what starts the CLI, e.g. ``torchrun --nproc_per_node 4 -m pcfrl_bench``."""
    argv = [*launcher]
    if threads:
        argv += ["--threads", str(threads)]
    argv += ["run", "--method", cell.method, "--task", cell.task, "--preset", cell.preset, "--seed", str(cell.seed)]
    for override in cell.overrides:
        argv += ["--set", override]
    if device != "auto":
        argv += ["--device", device]
    for flag, path in (("--out", out), ("--cache-dir", cache_dir), ("--data-root", data_root)):
        if path is not None:
            argv += [flag, str(path)]
    return argv + ["--resume"] * resume + ["--restart"] * restart


def shell_line(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


# ----------------------------------------------------------------------------------------------- estimate


@dataclass(frozen=True)
class StepTime:
    seconds: float
    source: str  # where the figure comes from (a record of `pcfrl-bench complexity` on CUDA, or the paper)


def measured_step_times(record_dirs: Iterable[Path], preset: str) -> dict[str, StepTime]:
    """Seconds per step of ``pcfrl-bench complexity`` records measured on CUDA at ``preset``, by method and by
    implementation (the newest record wins); folders that do not exist are skipped."""
    found: dict[str, tuple[str, StepTime]] = {}
    for folder in record_dirs:
        if not Path(folder).is_dir():
            continue
        for rec in load_records(Path(folder))[0]:
            if rec.task != COMPLEXITY_TASK or rec.preset != preset or not rec.device.startswith("cuda"):
                continue
            time = StepTime(float(rec.metrics["time_s"]), f"{rec.path} ({rec.device_name or rec.device})")
            for key in (rec.method, rec.implementation):
                if key and (key not in found or found[key][0] < rec.created):
                    found[key] = (rec.created, time)
    return {key: time for key, (_, time) in found.items()}


def paper_step_times() -> dict[str, StepTime]:
    """Table 10 of the paper (PCL 0.0547, PCFRL 0.0562 s per step of batch 256 at 64 px, the authors' GPU), by
    registry method; the paper preset's batch and input size."""
    from .reporting.paper import default_paper_dir, load_paper_table

    table = load_paper_table(default_paper_dir() / "table10.yaml")
    return {row.registry: StepTime(float(row.values["time_s"]), "the paper's Table 10 (the authors' GPU)")
            for row in table.rows if row.registry and row.values.get("time_s") is not None}


def step_times(out_dir: Path, preset: str) -> dict[str, StepTime]:
    """The step times an estimate uses: CUDA measurements among the records of ``out_dir``, else (paper preset
    only) the paper's Table 10."""
    paper = paper_step_times() if preset == "paper" else {}
    return {**paper, **measured_step_times([out_dir], preset)}


@dataclass(frozen=True)
class GroupEstimate:
    group: PretrainGroup
    epochs_left: int
    steps_per_epoch: int | None  # None: the pretraining source's size is unknown (its data is not here)
    step_time: StepTime | None  # None: no measurement for this method

    @property
    def hours(self) -> float | None:
        if self.steps_per_epoch is None or self.step_time is None:
            return None
        return self.epochs_left * self.steps_per_epoch * self.step_time.seconds / 3600


def source_size(data: DataConfig, data_root: Path) -> int | None:
    """Samples per pretraining epoch, or None when the source cannot be read here (e.g. its data is absent)."""
    from .data.sources import build_source

    try:
        return len(build_source(data, data_root))
    except (PcfrlError, OSError):
        return None


def estimate(groups: Sequence[PretrainGroup], data_root: Path, times: dict[str, StepTime]) -> list[GroupEstimate]:
    """Device hours of the pretrainings still to train: epochs left x steps per epoch x seconds per step of the
    method (else of its implementation: calibration variants share their code's step). Evaluation is not
    counted (features are extracted once and probes train on cached features, small next to pretraining)."""
    sizes: dict[str, int | None] = {}
    out = []
    for g in groups:
        done = epochs_done(g) or 0
        if done >= g.epochs:  # complete, or nothing to train (the floors)
            continue
        if g.data_key not in sizes:
            sizes[g.data_key] = source_size(g.data, data_root)
        n = sizes[g.data_key]
        steps = n // min(g.batch_size, n) if n else None  # full batches, the batch capped at the source's size
        method = g.cells[0].cell.method
        out.append(GroupEstimate(g, g.epochs - done, steps, times.get(method) or times.get(g.implementation)))
    return out


def estimate_lines(estimates: Sequence[GroupEstimate]) -> list[str]:
    """A few lines summing up :func:`estimate` for people: the total where it is known, and what is missing."""
    if not estimates:
        return ["No pretraining left to train."]
    timed = [e for e in estimates if e.step_time is not None]
    sources = "; ".join(sorted({e.step_time.source for e in timed if e.step_time}))
    lines = [f"GPU-hours of the {len(estimates)} pretraining(s) left to train (one-GPU step times"
             + (f" from {sources}" if sources else "") + "; evaluation not counted):"]
    known = [e for e in timed if e.hours is not None]
    if known:
        lines.append(f"  {sum(e.hours or 0.0 for e in known):,.1f} h for the {len(known)} whose steps per epoch are "
                     "known")
    for source in sorted({str(e.group.data.source) for e in timed if e.hours is None}):
        part = [e for e in timed if e.hours is None and e.group.data.source == source]
        per_step = sum(e.epochs_left * e.step_time.seconds for e in part if e.step_time) / 3600
        lines.append(f"  {len(part)} on {source}, whose data is not under the data root (steps per epoch unknown): "
                     f"{per_step:,.4f} h x steps per epoch, e.g. {per_step * 1000:,.1f} h at 1,000")
    untimed = sorted({e.group.cells[0].cell.method for e in estimates if e.step_time is None})
    if untimed:
        lines.append(f"  {len(estimates) - len(timed)} without a step time measured on CUDA for their method "
                     f"({', '.join(untimed)}): measure with `pcfrl-bench complexity --methods ... --preset PRESET "
                     "--device cuda --out OUT` into the grid's --out")
    return lines

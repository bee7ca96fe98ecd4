"""Grids on a Slurm cluster through submitit (the optional extra ``pcfrl-bench[cluster]``).

One job of a job array per pretraining group (:mod:`gridplan`): the job runs its cells in order, so the group
pretrains once and its other tasks reuse the checkpoint. Jobs are idempotent: a cell whose record is stored is
skipped; a preempted or timed-out job is requeued by submitit and resumes its pretraining from the last
checkpoint; a job that meets a pretraining another job is training waits on the folder lock, then reuses it.
A cell whose pretraining needs several GPUs runs as ``torchrun --standalone --nproc_per_node N -m pcfrl_bench
run ...`` inside its job (the project's DDP path).

Every job writes the state of each of its cells (``running``, ``failed`` with the error, ``done``) into
``<jobs dir>/cells/``, and every submission a manifest into ``<jobs dir>/submissions/``; :func:`grid_status` reads
them together with the records and the scheduler's job states. These are YAML files (no ``.json``: the jobs dir
may live inside the records folder, whose ``*.json`` are records).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from .config import bounded, build_dataclass, load_yaml
from .errors import ConfigError, PcfrlError
from .grid import Cell, stored_record
from .gridplan import PlannedCell, PretrainGroup, run_command
from .io import atomic_write_text
from .pretraining import RunOptions, RunPaths
from .resolution import resolve
from .results import record_path
from .runner import run

INSTALL_HINT = 'pip install "pcfrl-bench[cluster]"'
ALIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING"}


class ClusterError(PcfrlError):
    """A cluster submission cannot be made (no submitit, no Slurm) or its settings are wrong."""


def require_submitit() -> Any:
    """The ``submitit`` module, or a ClusterError that says how to install it."""
    try:
        import submitit
    except ImportError:
        raise ClusterError(f"--executor slurm needs submitit, an optional dependency. Install it with: "
                           f"{INSTALL_HINT}") from None
    return submitit


# --------------------------------------------------------------------------------------------- settings


@dataclass
class SlurmSettings:
    """What each job of the array asks Slurm for (the ``slurm:`` section of ``--cluster-config``)."""

    partition: str = ""  # empty: the cluster's default partition
    time: str = "24:00:00"  # wall-clock limit per job: minutes, HH:MM:SS or D-HH:MM:SS
    gpus_per_node: int = bounded(1, 0)  # > 1: the job's cells pretrain under torchrun with one process per GPU
    cpus_per_task: int = bounded(8, 1)
    mem: str = ""  # e.g. 64G; empty: the partition's default
    array_parallelism: int = bounded(64, 1)  # jobs of the array running at once
    additional: dict[str, Any] = field(default_factory=dict)  # other sbatch options, e.g. {account: abc, qos: high}
    setup: list[str] = field(default_factory=list)  # shell lines run before the job, e.g. "source .venv/bin/activate"

    @property
    def minutes(self) -> int:
        return time_minutes(self.time)


def time_minutes(text: str) -> int:
    """Slurm's time formats (``MM``, ``HH:MM:SS``, ``D-HH:MM:SS``, ``D-HH``) in whole minutes (seconds rounded up)."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(text).strip())
    if not match or (match[1] is None and match[3] is None and match[4] is not None):
        raise ConfigError(f"slurm time {text!r}: expected minutes, HH:MM:SS or D-HH:MM:SS")
    days, first, second, third = (int(g) if g else 0 for g in match.groups())
    if match[1] is not None:  # D-HH[:MM[:SS]]
        seconds = ((days * 24 + first) * 60 + second) * 60 + third
    elif match[4] is not None:  # HH:MM:SS
        seconds = (first * 60 + second) * 60 + third
    elif match[3] is not None:  # MM:SS
        seconds = first * 60 + second
    else:  # MM
        seconds = first * 60
    if seconds <= 0:
        raise ConfigError(f"slurm time {text!r}: must be positive")
    return -(-seconds // 60)


def slurm_settings(config_file: Path | None = None, additional: Sequence[str] = (), **options: Any) -> SlurmSettings:
    """Defaults <- the ``slurm:`` section of ``config_file`` <- the options given (None: not given).
    ``additional`` holds ``KEY=VALUE`` sbatch options added to the file's."""
    section: dict[str, Any] = {}
    if config_file is not None:
        data = load_yaml(config_file)
        unknown = sorted(set(data) - {"slurm"})
        if unknown:
            raise ConfigError(f"{config_file}: unknown section(s) {', '.join(unknown)}; the cluster config holds "
                              "a 'slurm:' section")
        section = data.get("slurm") or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{config_file}: 'slurm:' must be a mapping")
    section = {**section, **{k: v for k, v in options.items() if v is not None}}
    try:
        settings = build_dataclass(SlurmSettings, section, "slurm")
    except PcfrlError as exc:  # a bad key or value of the file (the options are typed by the command line)
        raise ConfigError(f"{config_file or 'slurm settings'}: {exc}") from None
    if not isinstance(settings.additional, dict) or not isinstance(settings.setup, list):
        raise ConfigError("slurm.additional must be a mapping of sbatch options and slurm.setup a list of shell lines")
    for item in additional:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-additional expects KEY=VALUE (an sbatch option), got {item!r}")
        settings.additional[key.strip()] = value
    time_minutes(settings.time)  # a bad format fails here, before anything is submitted
    return settings


def slurm_lines(settings: SlurmSettings, jobs: int) -> list[str]:
    """What ``--dry-run`` shows of a Slurm submission: the array and each job's sbatch settings."""
    params = executor_parameters(settings)
    lines = [f"Slurm job array: {jobs} job(s), one per pretraining group, at most {settings.array_parallelism} at once"]
    lines += [f"  {key.removeprefix('slurm_')}: {value}" for key, value in params.items()]
    if settings.gpus_per_node > 1:
        lines.append(f"  each cell: torchrun --standalone --nproc_per_node {settings.gpus_per_node} "
                     "-m pcfrl_bench run ...")
    return lines


def executor_parameters(settings: SlurmSettings) -> dict[str, Any]:
    """The parameters given to ``submitit.AutoExecutor.update_parameters`` (``slurm_*`` ones apply on Slurm only)."""
    params: dict[str, Any] = {
        "name": "pcfrl-grid", "timeout_min": settings.minutes, "nodes": 1, "tasks_per_node": 1,
        "gpus_per_node": settings.gpus_per_node, "cpus_per_task": settings.cpus_per_task,
        "slurm_array_parallelism": settings.array_parallelism,
    }
    optional = {"slurm_partition": settings.partition, "slurm_mem": settings.mem,
                "slurm_additional_parameters": dict(settings.additional), "slurm_setup": list(settings.setup)}
    return params | {k: v for k, v in optional.items() if v}


# ------------------------------------------------------------------------------------------ cell states


def state_path(jobs_dir: Path, planned: PlannedCell) -> Path:
    """``<jobs dir>/cells/<task>/<method>/<preset>-seed<seed>-<config hash>.yaml``: the state a job wrote."""
    c = planned.cell
    return record_path(jobs_dir / "cells", c.method, c.task, c.preset, c.seed, planned.config_hash).with_suffix(".yaml")


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))


def _read_yaml(path: Path) -> dict[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _job_identity() -> dict[str, Any]:
    """Executor, job id and log of the submitit job this process runs in, host and PID (outside a submitit job:
    a local job whose id is the PID)."""
    executor = os.environ.get("SUBMITIT_EXECUTOR")
    info: dict[str, Any] = {"executor": "local", "host": socket.gethostname(), "pid": os.getpid(),
                            "job_id": str(os.getpid()), "log": None}
    if executor:
        import submitit

        env = submitit.JobEnvironment()
        info.update(executor=executor, job_id=str(env.job_id), log=str(env.paths.stdout))
    return info


# ------------------------------------------------------------------------------------------------- jobs


@dataclass
class CellJob:
    """One job of the array: the cells of one pretraining group, run in order (a submitit callable).

    submitit calls :meth:`checkpoint` when the job is preempted or about to time out, pickles what it returns
    and requeues the job: the cells finished so far are remembered and the pretraining resumes from its last
    checkpoint (``pretrain.checkpoint_every`` epochs apart)."""

    cells: tuple[PlannedCell, ...]
    paths: RunPaths
    jobs_dir: Path
    device: str = "auto"
    options: RunOptions = field(default_factory=RunOptions)
    skip_existing: bool = True
    processes: int = 1  # > 1: each cell runs under torchrun with this many processes (one per GPU)
    threads: int = 0  # torch CPU threads per process (0: torch's default)
    finished: list[int] = field(default_factory=list)  # indices of cells done in an earlier run of this job

    def __call__(self) -> list[str]:
        from submitit.core.utils import UncompletedJobError

        if self.threads and self.processes == 1:
            import torch

            torch.set_num_threads(self.threads)
        console = Console(file=sys.stdout, soft_wrap=True, highlight=False)
        identity = _job_identity()
        failures, first = [], True
        for i, planned in enumerate(self.cells):
            cell = planned.cell
            if i in self.finished or (self.skip_existing and stored_record(cell, self.paths.out_dir)):
                console.print(f"{cell.label}: record stored, skipped")
                continue
            state = state_path(self.jobs_dir, planned)
            _write_yaml(state, {"state": "running", "time": time.time(), **identity})
            console.print(f"[bold]{cell.label}[/]: running")
            try:
                self._run(cell, restart=self.options.restart and first, console=console)
            except Exception as exc:  # a failing cell leaves the group's other cells to run
                _write_yaml(state, {"state": "failed", "time": time.time(), "error": f"{type(exc).__name__}: {exc}",
                                    **identity})
                if isinstance(exc, UncompletedJobError):  # submitit gave up on the job (timed out too often)
                    raise
                console.print(f"[red]{cell.label} failed:[/] {exc}")
                failures.append(cell.label)
            else:
                _write_yaml(state, {"state": "done", "time": time.time(), **identity})
                self.finished.append(i)
            first = False
        if failures:
            raise PcfrlError(f"{len(failures)} of {len(self.cells)} cells failed: {', '.join(failures)}")
        return [p.cell.label for p in self.cells]

    def _run(self, cell: Cell, restart: bool, console: Console) -> None:
        options = replace(self.options, restart=restart, progress=False)
        if self.processes == 1:
            run(resolve(cell.method, cell.task, cell.preset, cell.seed, self.device, cell.overrides), self.paths,
                options, console)
            return
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                    str(self.processes), "-m", "pcfrl_bench"]
        argv = run_command(cell, self.paths.out_dir, cache_dir=self.paths.cache_dir, data_root=self.paths.data_root,
                           device=self.device, threads=self.threads, resume=options.resume, restart=restart,
                           launcher=launcher)
        sys.stdout.flush()
        process = subprocess.Popen(argv)
        try:
            code = process.wait()
        finally:  # preempted (submitit's signal handler exits this process): stop the workers too
            if process.poll() is None:
                process.terminate()
                process.wait()
        if code:
            raise PcfrlError(f"torchrun exited with status {code}")

    def checkpoint(self) -> Any:
        """Called by submitit on preemption or time-out: requeue this job, resuming the pretraining."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(replace(self, options=replace(self.options, resume=True, restart=False)))


def make_jobs(groups: Sequence[PretrainGroup], paths: RunPaths, jobs_dir: Path, settings: SlurmSettings, *,
              device: str = "auto", options: RunOptions | None = None, skip_existing: bool = True) -> list[CellJob]:
    """One job per pretraining group, with absolute paths (jobs may start in another folder)."""
    absolute = RunPaths(paths.out_dir.absolute(), paths.cache_dir.absolute(), paths.data_root.absolute())
    processes = max(1, settings.gpus_per_node)
    threads = max(1, settings.cpus_per_task // processes)
    return [CellJob(tuple(g.cells), absolute, jobs_dir.absolute(), device, options or RunOptions(), skip_existing,
                    processes, threads) for g in groups]


@dataclass(frozen=True)
class Submitted:
    job_id: str
    log: Path  # the job's output (stdout; stderr, with tracebacks, is beside it)
    cells: int
    handle: Any = field(default=None, compare=False, repr=False)  # submitit's Job (wait(), done(), state)


def submit(jobs: Sequence[CellJob], settings: SlurmSettings, jobs_dir: Path, cluster: str = "slurm") -> list[Submitted]:
    """Submit ``jobs`` as one job array (``cluster="local"``: submitit's local processes, for tests) and write the
    submission's manifest."""
    if not jobs:
        return []
    submitit = require_submitit()
    if cluster == "slurm" and not shutil.which("sbatch"):
        raise ClusterError("--executor slurm: sbatch is not on PATH (no Slurm on this machine); --dry-run shows "
                           "what would be submitted, --print-commands the commands for another scheduler")
    try:
        executor = submitit.AutoExecutor(folder=jobs_dir / "submitit", cluster=cluster)
    except RuntimeError as err:
        raise ClusterError(f"--executor {cluster}: {err}") from None
    executor.update_parameters(**executor_parameters(settings))
    submitted_at = time.time()  # before any job can start: a cell state written by a job is newer
    with executor.batch():
        handles = [executor.submit(job) for job in jobs]
    submitted = [Submitted(str(h.job_id), h.paths.stdout, len(job.cells), h) for h, job in zip(handles, jobs)]
    manifest = {
        "executor": cluster, "host": socket.gethostname(), "submitted": submitted_at,
        "settings": asdict(settings),
        "jobs": [{"job_id": s.job_id, "log": str(s.log),
                  "cells": [str(state_path(jobs_dir, p).relative_to(jobs_dir)) for p in job.cells]}
                 for s, job in zip(submitted, jobs)],
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    _write_yaml(jobs_dir / "submissions" / f"{stamp}-{submitted[0].job_id if submitted else 'none'}.yaml", manifest)
    return submitted


# ----------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class CellStatus:
    planned: PlannedCell
    state: str  # done | running | pending | failed | missing
    detail: str = ""
    log: str | None = None


STATES = ("done", "running", "pending", "failed", "missing")


def _submissions(jobs_dir: Path) -> dict[str, dict[str, Any]]:
    """The latest submission of each cell state key: its job (id, log) with the manifest's executor, host, time."""
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted((jobs_dir / "submissions").glob("*.yaml")):
        manifest = _read_yaml(path) or {}
        for job in manifest.get("jobs") or []:
            entry = {"job_id": str(job.get("job_id")), "log": job.get("log"), "executor": manifest.get("executor"),
                     "host": manifest.get("host"), "time": float(manifest.get("submitted") or 0)}
            for key in job.get("cells") or []:
                if key not in latest or latest[key]["time"] <= entry["time"]:
                    latest[key] = entry
    return latest


def job_states(jobs: Sequence[dict[str, Any]], jobs_dir: Path) -> dict[str, bool | None]:
    """Whether each job (``job_id``, ``executor``, ``host``) is still queued or running: local jobs by their
    process (on the host that started them), Slurm jobs through submitit (``sacct``); None where unknown."""
    alive: dict[str, bool | None] = {}
    slurm = []
    for job in jobs:
        if job["executor"] == "local" and job["host"] == socket.gethostname() and job["job_id"].isdigit():
            try:
                os.kill(int(job["job_id"]), 0)
                alive[job["job_id"]] = True
            except ProcessLookupError:
                alive[job["job_id"]] = False
            except PermissionError:
                alive[job["job_id"]] = True
        elif job["executor"] == "slurm":
            slurm.append(job["job_id"])
        else:
            alive[job["job_id"]] = None
    if slurm:
        try:
            import submitit
        except ImportError:
            submitit = None
        if submitit is None or not shutil.which("sacct"):
            alive.update({j: None for j in slurm})
        else:
            handles = {j: submitit.SlurmJob(jobs_dir / "submitit", j) for j in slurm}
            for j, handle in handles.items():
                state = str(handle.state).split()[0].upper()
                alive[j] = None if state == "UNKNOWN" else state in ALIVE_STATES
    return alive


def status_table(statuses: Sequence[CellStatus]) -> Table:
    table = Table(title="Grid status", title_justify="left")
    for col in ("state", "method", "task", "seed", "preset", "config", "detail", "log"):
        table.add_column(col, overflow="fold", no_wrap=col not in ("detail", "log"))
    colours = {"done": "green", "running": "cyan", "pending": "blue", "failed": "red", "missing": "yellow"}
    for s in statuses:
        c = s.planned.cell
        table.add_row(f"[{colours[s.state]}]{s.state}[/]", c.method, c.task, str(c.seed), c.preset,
                      s.planned.config_hash[:8], s.detail, s.log or "")
    return table


def status_counts(statuses: Sequence[CellStatus]) -> str:
    return ", ".join(f"{sum(s.state == state for s in statuses)} {state}" for state in STATES)


def grid_status(cells: Sequence[PlannedCell], out_dir: Path, jobs_dir: Path) -> list[CellStatus]:
    """Each cell's state: ``done`` (its record is stored with this config), ``running`` or ``failed`` (as its
    job wrote it, checked against the job's liveness), ``pending`` (submitted, not started) or ``missing``."""
    submissions = _submissions(jobs_dir)
    keys = {p: str(state_path(jobs_dir, p).relative_to(jobs_dir)) for p in cells}
    states = {p: _read_yaml(jobs_dir / keys[p]) or {} for p in cells}
    jobs = [submissions[k] for k in keys.values() if k in submissions]
    jobs += [{"job_id": str(st["job_id"]), "executor": st.get("executor"), "host": st.get("host")}
             for st in states.values() if st.get("job_id")]
    alive = job_states(list({job["job_id"]: job for job in jobs}.values()), jobs_dir)
    out = []
    for p in cells:
        record = stored_record(p.cell, out_dir)
        state, sub = states[p], submissions.get(keys[p])
        if record is not None:
            out.append(CellStatus(p, "done", str(record.path)))
        elif state.get("state") in ("running", "failed") and float(state.get("time", 0)) >= (sub or {}).get("time", 0):
            job, log = f"job {state.get('job_id')}", state.get("log")
            live = alive.get(str(state.get("job_id")))
            if state["state"] == "failed":
                out.append(CellStatus(p, "failed", f"{job}: {state.get('error', '')}", log))
            elif live is False:
                out.append(CellStatus(p, "failed", f"{job} ended while running this cell (killed?)", log))
            else:
                out.append(CellStatus(p, "running", job + (" (not checked)" if live is None else ""), log))
        elif sub is not None:
            job, live = f"job {sub['job_id']}", alive.get(sub["job_id"])
            if live is False:
                out.append(CellStatus(p, "failed", f"{job} ended without running this cell", sub["log"]))
            else:
                out.append(CellStatus(p, "pending", job + (" (not checked)" if live is None else ""), sub["log"]))
        else:
            out.append(CellStatus(p, "missing"))
    return out

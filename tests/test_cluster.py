"""Grids beyond one machine: plans, shards, dry runs, exported commands, Slurm settings, status, and jobs run
through submitit's local executor (real processes) - records written once, a shared pretraining trained once,
a killed and a preempted job resumed, shards adding up."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.cluster import (INSTALL_HINT, CellJob, SlurmSettings, executor_parameters, grid_status, make_jobs,
                                 slurm_settings, state_path, submit, time_minutes)
from pcfrl_bench.errors import ConfigError
from pcfrl_bench.grid import Cell, grid_cells
from pcfrl_bench.gridplan import (estimate, groups_to_run, parse_shard, plan_grid, planned_cells, run_command, shard,
                                  step_times)
from pcfrl_bench.io import atomic_write_json
from pcfrl_bench.results import read_record
from pcfrl_bench.runner import RunOptions, RunPaths

LOCAL = SlurmSettings(time="10", gpus_per_node=0, cpus_per_task=1)  # what the local test jobs ask for


def paths_in(root: Path) -> RunPaths:
    return RunPaths(root / "runs", root / "cache", root / "data")


def fake_record(out: Path, cell: Cell, config_hash: str, **fields) -> Path:
    data = {"method": cell.method, "task": cell.task, "preset": cell.preset, "seed": cell.seed, "metric": "accuracy",
            "metrics": {"accuracy": 1.0}, "config": {}, "config_hash": config_hash, **fields}
    return atomic_write_json(out / cell.task / cell.method / f"{cell.preset}-seed{cell.seed}.json", data)


# ---------------------------------------------------------------------------------------------- plans, shards


def test_plan_groups_cells_by_the_pretraining_they_share(tmp_path):
    groups = plan_grid(grid_cells(["simclr", "pcl"], ["digits", "synth-fer", "synth-hpe"], [0, 1], "smoke"), tmp_path)
    assert len(groups) == 8  # per method and seed: digits alone, the synthetic tasks share one pretraining
    shared = [g for g in groups if len(g.cells) == 2]
    assert len(shared) == 4 and all({p.cell.task for p in g.cells} == {"synth-fer", "synth-hpe"} for g in shared)
    assert all(len({p.pretrain_hash for p in g.cells}) == 1 for g in groups)
    assert len({g.run_dir for g in groups}) == 8


def test_shards_are_disjoint_deterministic_and_add_up_to_the_grid(tmp_path):
    cells = grid_cells(["simclr", "pcl", "pcfrl"], ["digits", "synth-fer", "synth-hpe"], [0, 1, 2], "smoke")
    groups = plan_grid(cells, tmp_path)
    reordered = plan_grid(grid_cells(["pcfrl", "simclr", "pcl"], ["synth-hpe", "digits", "synth-fer"], [2, 0, 1],
                                     "smoke"), tmp_path)
    everything = {p.cell for p in planned_cells(groups)}
    assert len(everything) == len(cells) == 27
    for n in (1, 2, 4, 7, 30):
        parts = [{p.cell for p in planned_cells(shard(groups, i, n))} for i in range(1, n + 1)]
        assert sum(len(part) for part in parts) == len(everything)  # disjoint ...
        assert set().union(*parts) == everything  # ... and adding up to the grid
        for i in range(1, n + 1):  # the same shard whatever order the names were given in
            assert {p.cell for p in planned_cells(shard(reordered, i, n))} == parts[i - 1]
        for g in groups:  # no pretraining is split over shards
            assert sum(any(p.cell in part for p in g.cells) for part in parts) == 1
    pretrainings = [len(shard(groups, i, 4)) for i in (1, 2, 3, 4)]  # what takes the time, spread evenly
    assert sorted(pretrainings) == [4, 4, 5, 5]
    for source in ("digits", "synth"):  # ... kind by kind (a synthetic pretraining costs more than a digits one)
        per_shard = [sum(g.data.source == source for g in shard(groups, i, 4)) for i in (1, 2, 3, 4)]
        assert sum(per_shard) == 9 and max(per_shard) - min(per_shard) <= 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0", "-1/2"])
def test_bad_shard_is_an_error(text):
    with pytest.raises(ConfigError, match="--shard expects i/n"):
        parse_shard(text)
    assert parse_shard("2/5") == (2, 5)


def test_grid_option_errors_exit_2_without_a_traceback(tmp_path):
    base = ["grid", "--methods", "simclr", "--tasks", "digits", "--preset", "smoke", "--out", str(tmp_path / "o")]
    for extra, message in ((["--shard", "0/2"], "--shard expects i/n"),
                           (["--slurm-partition", "gpu"], "--slurm-partition: only with --executor slurm"),
                           (["--dry-run", "--status"], "--dry-run and --status exclude each other"),
                           (["--executor", "slurm", "--slurm-time", "soon", "--dry-run"], "slurm time 'soon'")):
        result = CliRunner().invoke(main, base + extra)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


# ------------------------------------------------------------------------------------------- slurm settings


@pytest.mark.parametrize("text,minutes", [("90", 90), ("2:30:00", 150), ("45:30", 46), ("1-02:00:00", 1560),
                                          ("1-2", 1560), ("0:00:30", 1)])
def test_slurm_time_formats(text, minutes):
    assert time_minutes(text) == minutes


@pytest.mark.parametrize("text", ["abc", "0", "1:2:3:4", ""])
def test_bad_slurm_time_is_an_error(text):
    with pytest.raises(ConfigError, match="slurm time"):
        time_minutes(text)


def test_slurm_settings_from_file_then_options(tmp_path):
    config = tmp_path / "cluster.yaml"
    config.write_text(yaml.safe_dump({"slurm": {"partition": "gpu", "time": "2:00:00", "mem": "64G",
                                                "additional": {"account": "abc"}, "setup": ["module load cuda"]}}))
    settings = slurm_settings(config, ["qos=high"], partition="a100", gpus_per_node=4, time=None)
    assert (settings.partition, settings.minutes, settings.gpus_per_node, settings.mem) == ("a100", 120, 4, "64G")
    assert settings.additional == {"account": "abc", "qos": "high"}
    params = executor_parameters(settings)
    assert params["slurm_partition"] == "a100" and params["timeout_min"] == 120 and params["gpus_per_node"] == 4
    assert params["slurm_additional_parameters"] == {"account": "abc", "qos": "high"}
    assert params["slurm_setup"] == ["module load cuda"] and params["slurm_mem"] == "64G"
    config.write_text("slurm: {partitoin: gpu}\n")
    with pytest.raises(ConfigError, match="Did you mean 'slurm.partition'"):
        slurm_settings(config)
    config.write_text("slurn: {partition: gpu}\n")
    with pytest.raises(ConfigError, match="unknown section"):
        slurm_settings(config)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        slurm_settings(None, ["account"])


def test_executor_parameters_are_accepted_by_submitit(tmp_path):
    """Every parameter name is one submitit knows (its AutoExecutor checks the slurm_* names on any cluster)."""
    submitit = pytest.importorskip("submitit")
    settings = slurm_settings(None, ["account=abc"], partition="gpu", mem="32G", setup=["true"])
    executor = submitit.AutoExecutor(folder=tmp_path, cluster="local")
    executor.update_parameters(**executor_parameters(settings))
    assert executor.parameters["timeout_min"] == 24 * 60


def test_slurm_without_submitit_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if not installed: importing it raises ImportError
    args = ["grid", "--methods", "simclr", "--tasks", "digits", "--preset", "smoke", "--out", str(tmp_path / "o"),
            "--executor", "slurm"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and INSTALL_HINT in result.output and "Traceback" not in result.output
    dry = CliRunner().invoke(main, args + ["--dry-run"])  # a dry run needs no submitit
    assert dry.exit_code == 0, dry.output
    assert "Slurm job array: 1 job(s)" in dry.output


def test_slurm_without_sbatch_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    args = ["grid", "--methods", "simclr", "--tasks", "digits", "--preset", "smoke", "--out", str(tmp_path / "o"),
            "--executor", "slurm"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "sbatch is not on PATH" in result.output


# ------------------------------------------------------------------------------- dry run, estimate, commands


def test_dry_run_lists_cells_records_checkpoints_and_slurm_parameters_and_runs_nothing(tmp_path):
    out, cache = tmp_path / "runs", tmp_path / "cache"
    cells = grid_cells(["simclr"], ["digits"], [0, 1, 2], "smoke")
    groups = plan_grid(cells, cache)
    seed0, seed1, seed2 = groups
    fake_record(out, seed0.cells[0].cell, seed0.cells[0].config_hash)
    seed0.run_dir.mkdir(parents=True)
    (seed0.run_dir / "backbone.pt").write_bytes(b"")
    seed1.run_dir.mkdir(parents=True)
    (seed1.run_dir / "last.pt").write_bytes(b"")
    (seed1.run_dir / "log.jsonl").write_text('{"epoch": 1}\n')
    config = tmp_path / "cluster.yaml"
    config.write_text("slurm: {partition: gpu, time: '3:00:00', additional: {account: abc}}\n")
    before = sorted(p for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "0,1,2",
                                       "--preset", "smoke", "--out", str(out), "--cache-dir", str(cache),
                                       "--executor", "slurm", "--cluster-config", str(config),
                                       "--slurm-partition", "a100", "--dry-run"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[4].strip(): line for line in result.output.splitlines() if "│ simclr" in line}
    assert set(rows) == {"0", "1", "2"}
    assert "stored" in rows["0"] and "complete" in rows["0"] and seed0.cells[0].config_hash[:8] in rows["0"]
    assert "epoch 1/2" in rows["1"] and "stored" not in rows["1"] and seed1.cells[0].pretrain_hash[:8] in rows["1"]
    assert "3 cells in 3 pretraining group(s): 1 stored, 2 to run" in result.output
    assert "Slurm job array: 2 job(s)" in result.output
    assert "partition: a100" in result.output and "timeout_min: 180" in result.output and "abc" in result.output
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing ran, nothing was written


def test_estimate_is_epochs_left_times_steps_times_step_time(tmp_path):
    out, cache = tmp_path / "runs", tmp_path / "cache"
    groups = plan_grid(grid_cells(["simclr"], ["digits"], [0, 1], "smoke"), cache)
    assert step_times(out, "smoke") == {}
    atomic_write_json(out / "complexity" / "simclr" / "smoke-seed0.json", {
        "method": "simclr", "task": "complexity", "preset": "smoke", "seed": 0, "metric": "time_s",
        "metrics": {"time_s": 0.5}, "config": {}, "config_hash": "x", "device": "cuda", "implementation": "simclr",
        "created": "2026-01-01T00:00:00+00:00"})
    atomic_write_json(out / "complexity" / "pcl" / "smoke-seed0.json", {  # a CPU measurement is never used
        "method": "pcl", "task": "complexity", "preset": "smoke", "seed": 0, "metric": "time_s",
        "metrics": {"time_s": 9.0}, "config": {}, "config_hash": "x", "device": "cpu", "implementation": "pcl"})
    times = step_times(out, "smoke")
    assert set(times) == {"simclr"} and times["simclr"].seconds == 0.5
    groups[1].run_dir.mkdir(parents=True)
    (groups[1].run_dir / "last.pt").write_bytes(b"")
    (groups[1].run_dir / "log.jsonl").write_text('{"epoch": 1}\n')
    est = estimate(groups, tmp_path / "data", times)
    # smoke digits: 128 images (data.max_samples), batch 32 -> 4 steps per epoch, 2 epochs; seed 1 has 1 left
    assert [(e.epochs_left, e.steps_per_epoch) for e in est] == [(2, 4), (1, 4)]
    assert est[0].hours == pytest.approx(2 * 4 * 0.5 / 3600) and est[1].hours == pytest.approx(4 * 0.5 / 3600)
    paper = step_times(out, "paper")  # the paper preset falls back on the paper's Table 10
    assert paper["pcl"].seconds == 0.0547 and paper["pcfrl"].seconds == 0.0562 and "Table 10" in paper["pcl"].source


def test_print_commands_run_the_planned_cells(tmp_path):
    out = tmp_path / "runs"
    base = ["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "0,1", "--preset", "smoke",
            "--set", "eval.probe.epochs=2", "--out", str(out)]
    result = CliRunner().invoke(main, base + ["--print-commands"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("pcfrl-bench")]
    assert len(lines) == 2
    argv = shlex.split(lines[0])
    assert argv[1:] == ["run", "--method", "simclr", "--task", "digits", "--preset", "smoke", "--seed", "0",
                        "--set", "eval.probe.epochs=2", "--out", str(out)]
    run = CliRunner().invoke(main, argv[1:], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    planned = plan_grid([Cell("simclr", "digits", "smoke", 0, ("eval.probe.epochs=2",))], tmp_path / "cache")
    records = list((out / "digits" / "simclr").glob("*.json"))
    assert len(records) == 1 and read_record(records[0]).config_hash == planned[0].cells[0].config_hash
    again = CliRunner().invoke(main, base + ["--print-commands"])  # the stored cell is left out now
    assert [line for line in again.output.splitlines() if line.startswith("pcfrl-bench")] == lines[1:]
    assert "1 stored cells left out" in again.output


def test_run_command_under_torchrun():
    argv = run_command(Cell("pcfrl", "rafdb", "paper", 2), Path("/o"), cache_dir=Path("/c"), device="cuda",
                       threads=4, resume=True, launcher=["torchrun", "--nproc_per_node", "4", "-m", "pcfrl_bench"])
    assert argv == ["torchrun", "--nproc_per_node", "4", "-m", "pcfrl_bench", "--threads", "4", "run", "--method",
                    "pcfrl", "--task", "rafdb", "--preset", "paper", "--seed", "2", "--device", "cuda", "--out", "/o",
                    "--cache-dir", "/c", "--resume"]


# ------------------------------------------------------------------------------------------------- status


def test_status_from_records_cell_states_and_submissions(tmp_path):
    out, jobs_dir = tmp_path / "runs", tmp_path / "runs" / ".jobs"
    groups = plan_grid(grid_cells(["simclr"], ["digits"], [0, 1, 2, 3, 4, 5], "smoke"), tmp_path / "cache")
    done, running_dead, failed, pending, resubmitted, missing = planned_cells(groups)
    fake_record(out, done.cell, done.config_hash)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a PID that no longer runs
    here = str(os.getpid())

    def state(planned, **data):
        path = state_path(jobs_dir, planned)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"executor": "local", "host": socket.gethostname(), **data}))

    def manifest(name, when, job_id, cells):
        folder = jobs_dir / "submissions"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(yaml.safe_dump({"executor": "local", "host": socket.gethostname(), "submitted": when,
                                                   "jobs": [{"job_id": job_id, "log": f"/logs/{job_id}.out", "cells": [
                                                       str(state_path(jobs_dir, p).relative_to(jobs_dir))
                                                       for p in cells]}]}))

    manifest("a.yaml", 100.0, str(gone.pid), [running_dead, failed, resubmitted])
    manifest("b.yaml", 300.0, here, [pending, resubmitted])
    state(running_dead, state="running", time=150.0, job_id=str(gone.pid), log="/logs/x.out")
    state(failed, state="failed", time=160.0, job_id=str(gone.pid), log="/logs/x.out", error="DatasetLayoutError: no")
    state(resubmitted, state="failed", time=170.0, job_id=str(gone.pid), error="old")  # older than submission b
    statuses = {s.planned: s for s in grid_status(planned_cells(groups), out, jobs_dir)}
    assert statuses[done].state == "done"
    assert statuses[running_dead].state == "failed" and "ended while running" in statuses[running_dead].detail
    assert statuses[failed].state == "failed" and "DatasetLayoutError" in statuses[failed].detail
    assert statuses[failed].log == "/logs/x.out"
    assert statuses[pending].state == "pending" and statuses[resubmitted].state == "pending"
    assert statuses[missing].state == "missing"
    result = CliRunner().invoke(main, ["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "0,1,2,3,4,5",
                                       "--preset", "smoke", "--out", str(out), "--status"])
    assert result.exit_code == 0, result.output
    assert "1 done, 0 running, 2 pending, 2 failed, 1 missing" in result.output


# ------------------------------------------------------------------------- real jobs (submitit local executor)


def wait_for(statuses_of, timeout: float = 600) -> list:
    start = time.time()
    while time.time() - start < timeout:
        statuses = statuses_of()
        if all(s.state in ("done", "failed") for s in statuses):
            return statuses
        time.sleep(0.5)
    raise AssertionError(f"jobs did not finish in {timeout} s: {statuses}")


def epochs_logged(run_dir: Path) -> list[int]:
    log = run_dir / "log.jsonl"
    return [json.loads(line)["epoch"] for line in log.read_text().splitlines()] if log.exists() else []


def test_shards_and_a_shared_pretraining_through_submitit_local_jobs(tmp_path):
    """Two shards of simclr x digits x {0, 1} and a second grid whose seed-0 cell shares the seed-0 pretraining
    (other probe epochs) run as three concurrent jobs, the second grid's with two processes per cell (as with
    two GPUs: `torchrun`, gloo here): every record is written once, the shared pretraining is trained once, the
    shards add up to the grid, and `results` and `--status` read the folder."""
    pytest.importorskip("submitit")
    paths = paths_in(tmp_path)
    jobs_dir = paths.out_dir / ".jobs"
    grid = plan_grid(grid_cells(["simclr"], ["digits"], [0, 1], "smoke"), paths.cache_dir)
    other = plan_grid(grid_cells(["simclr"], ["digits"], [0], "smoke", ["eval.probe.epochs=3"]), paths.cache_dir)
    two_gpus = SlurmSettings(gpus_per_node=2, cpus_per_task=2)
    jobs = [job for part in (shard(grid, 1, 2), shard(grid, 2, 2)) for job in make_jobs(part, paths, jobs_dir, LOCAL)]
    jobs += make_jobs(other, paths, jobs_dir, two_gpus, device="cpu")
    assert [(len(job.cells), job.processes, job.threads) for job in jobs] == [(1, 1, 1), (1, 1, 1), (1, 2, 1)]
    submitted = submit(jobs, LOCAL, jobs_dir, cluster="local")
    everything = planned_cells(grid) + planned_cells(other)
    statuses = wait_for(lambda: grid_status(everything, paths.out_dir, jobs_dir))
    assert [s.state for s in statuses] == ["done"] * 3, [s.detail for s in statuses]
    assert [h.handle.result() for h in submitted] == [[p.cell.label] for p in everything]  # the jobs succeeded
    records = [read_record(Path(s.detail)) for s in statuses]
    assert {(r.seed, r.config_hash) for r in records} == {(p.cell.seed, p.config_hash) for p in everything}
    shared = [r for r in records if r.seed == 0]
    assert sorted(r.reused_checkpoint for r in shared) == [False, True]  # trained by one job, reused by the other
    assert [r.processes for r in records] == [1, 1, 2]  # the last under torchrun, its record written by rank 0
    assert epochs_logged(grid[0].run_dir) == [1, 2]  # ... once
    listed = CliRunner().invoke(main, ["results", "--records", str(paths.out_dir), "--json"])
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == 3  # the .jobs folder holds no records
    mtimes = {s.detail: os.stat(s.detail).st_mtime_ns for s in statuses}
    assert groups_to_run(grid + other, paths.out_dir) == []  # nothing left: a new submission has no job
    assert submit(make_jobs([], paths, jobs_dir, LOCAL), LOCAL, jobs_dir, cluster="local") == []
    assert {d: os.stat(d).st_mtime_ns for d in mtimes} == mtimes  # written once


def test_killed_job_fails_then_resumes_and_a_preempted_job_is_requeued_and_resumes(tmp_path):
    """A job killed with SIGKILL (a lost node) shows as failed with its log; the cell resubmitted with resume
    continues its pretraining; that job, preempted (SIGUSR2, as Slurm signals), is requeued by submitit and
    resumes again. The pretraining log has every epoch exactly once."""
    pytest.importorskip("submitit")
    paths = paths_in(tmp_path)
    jobs_dir = paths.out_dir / ".jobs"
    # 10 steps of 32 images per epoch: long enough to signal between two epochs on any machine
    groups = plan_grid(grid_cells(["simclr"], ["digits"], [0], "smoke", ["data.max_samples=320",
                                                                           "pretrain.epochs=6"]), paths.cache_dir)
    planned = groups[0].cells[0]
    run_dir = groups[0].run_dir

    def signal_after_epoch(epochs: int, sig: int) -> None:
        """Send ``sig`` to the job's process once ``epochs`` are logged and a checkpoint exists."""
        start = time.time()
        while len(epochs_logged(run_dir)) < epochs or not (run_dir / "last.pt").is_file():
            assert time.time() - start < 300, "no progress"
            time.sleep(0.05)
        os.kill(yaml.safe_load(state_path(jobs_dir, planned).read_text())["pid"], sig)

    first = submit(make_jobs(groups, paths, jobs_dir, LOCAL), LOCAL, jobs_dir, cluster="local")
    signal_after_epoch(1, signal.SIGKILL)
    first[0].handle.wait()
    [status] = grid_status([planned], paths.out_dir, jobs_dir)
    assert status.state == "failed" and "ended while running" in status.detail
    assert status.log == str(first[0].log) and Path(status.log).is_file()
    assert 1 <= len(epochs_logged(run_dir)) < 6

    second = submit(make_jobs(groups, paths, jobs_dir, LOCAL, options=RunOptions(resume=True)), LOCAL, jobs_dir,
                    cluster="local")
    killed_at = len(epochs_logged(run_dir))
    signal_after_epoch(killed_at + 1, signal.SIGUSR2)
    [status] = wait_for(lambda: grid_status([planned], paths.out_dir, jobs_dir))
    assert status.state == "done", status
    log = second[0].log.read_text()
    assert log.count("Resuming pretraining from epoch") == 2 and "Requeued job" in log
    assert epochs_logged(run_dir) == [1, 2, 3, 4, 5, 6]
    assert [row["epoch"] for row in read_record(Path(status.detail)).pretrain_log] == [1, 2, 3, 4, 5, 6]


def test_checkpoint_requeues_the_job_with_resume(tmp_path):
    pytest.importorskip("submitit")
    groups = plan_grid([Cell("simclr", "digits", "smoke", 0)], tmp_path)
    job = CellJob(tuple(groups[0].cells), paths_in(tmp_path), tmp_path / "jobs", options=RunOptions(restart=True),
                  finished=[0])
    delayed = job.checkpoint()
    assert delayed.function.options.resume and not delayed.function.options.restart
    assert delayed.function.finished == [0] and delayed.function.cells == job.cells

"""The ``pcfrl-bench`` command line: parses options and calls the library; no logic of its own."""

from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path

import click
import torch
import yaml
from rich.console import Console
from rich.table import Table

from . import catalog
from .config import PRESETS
from .data.synthetic import EXPORTERS, export_like, preview_grid
from .errors import PcfrlError
from .io import default_data_root, user_cache_dir
from .analysis import analyze_checkpoint
from .reporting.figures import render_all_figures
from .reporting.paper import default_paper_dir
from .reporting.tables import render_all_tables
from .results import load_records
from .grid import check_expected, grid_cells, load_expected, run_grid, update_expected
from .runner import RunOptions, RunPaths, default_task, registry_result_hash, resolve, run, run_complexity

console = Console(stderr=True)
stdout = Console()


def friendly_errors(func):
    """Print user-facing errors as one message (no traceback) and exit with status 2."""
    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except PcfrlError as exc:
            console.print(f"[bold red]Error:[/] {exc}", markup=True, highlight=False)
            sys.exit(2)
    return wrapper


def common_run_options(func):
    """--method/--task/--preset/--seed/--device/--set shared by ``run`` and ``config``."""
    options = [
        click.option("--method", "-m", required=True, help="Registered method (see `pcfrl-bench list`)."),
        click.option("--task", "-t", required=True, help="Registered task (see `pcfrl-bench list`)."),
        click.option("--preset", "-p", type=click.Choice(PRESETS), default="quick", show_default=True,
                     help="Size preset: smoke (seconds, for tests), quick (minutes on a CPU), paper (the paper's)."),
        click.option("--seed", type=int, default=0, show_default=True, help="Seed of pretraining and probe."),
        click.option("--device", default="auto", show_default=True, help="auto (CUDA if present), cpu, cuda, cuda:N."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config key (dotted, typed by the schema); repeatable, e.g. "
                          "--set pretrain.epochs=5 --set method.temperature=0.2"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pcfrl-bench")
@click.option("--threads", type=int, default=0, envvar="PCFRL_THREADS", show_default=True,
              help="CPU threads for torch (0 = torch's default; env PCFRL_THREADS).")
def main(threads: int) -> None:
    """Benchmark harness for pose-aware contrastive facial representation learning.

    Crosses registered methods (SimCLR, ...) with registered tasks (digits, ...): pretrain once per
    config, freeze the backbone, run the task's protocol, store a result record.

    \b
    Examples:
      pcfrl-bench list
      pcfrl-bench run --method simclr --task digits
      pcfrl-bench run -m simclr -t digits --preset smoke --set pretrain.epochs=2
      pcfrl-bench config -m simclr -t digits --preset paper
      pcfrl-bench results
    """
    if threads > 0:
        torch.set_num_threads(threads)


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables (for scripts).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Dataset root used to report availability [default: $PCFRL_DATA or the user cache dir].")
@friendly_errors
def list_cmd(as_json: bool, data_root: Path | None) -> None:
    """List registered methods and tasks, and whether each task's data is available.

    \b
    Examples:
      pcfrl-bench list
      pcfrl-bench list --json | python -m json.tool
    """
    root = data_root or default_data_root()
    methods = [{"name": e.name, "description": e.description, "implementation": e.implementation}
               for e in catalog.all_entries("method")]
    tasks = []
    for e in catalog.all_entries("task"):
        available, where = default_task(e.name, root).availability()
        tasks.append({"name": e.name, "description": e.description, "metric": e.metric,
                      "available": available, "data": where})
    if as_json:
        click.echo(json.dumps({"methods": methods, "tasks": tasks, "data_root": str(root)}, indent=2))
        return
    table = Table(title="Methods")
    for col in ("name", "description"):
        table.add_column(col)
    for m in methods:
        table.add_row(m["name"], m["description"])
    stdout.print(table)
    table = Table(title=f"Tasks (data root: {root})")
    for col in ("name", "description", "metric", "data"):
        table.add_column(col)
    for t in tasks:
        mark = "[green]available[/]" if t["available"] else "[red]missing[/]"
        table.add_row(t["name"], t["description"], t["metric"], mark)
    stdout.print(table)


@main.command("run")
@common_run_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/runs"), show_default=True,
              help="Folder of result records: <out>/<task>/<method>/<preset>-seed<seed>.json.")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Dataset root [default: $PCFRL_DATA, else <cache dir>/data].")
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
              help="Checkpoints and feature caches [default: $PCFRL_CACHE, else ~/.cache/pcfrl-bench].")
@click.option("--resume", is_flag=True, help="Continue an interrupted pretraining from its last checkpoint.")
@click.option("--restart", is_flag=True, help="Discard an existing checkpoint of this config and pretrain again.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@friendly_errors
def run_cmd(method, task, preset, seed, device, overrides, out, data_root, cache_dir, resume, restart, no_progress):
    """Pretrain METHOD (or reuse its cached checkpoint), freeze it, evaluate on TASK, store the record.

    The checkpoint is keyed by a hash of the resolved pretraining config, so a second task with the
    same method and settings never pretrains twice. Frozen features are cached per checkpoint, task,
    split and image size.

    \b
    Examples:
      pcfrl-bench run --method simclr --task digits
      pcfrl-bench run -m simclr -t digits --preset smoke --seed 1 --out /tmp/runs
      pcfrl-bench run -m simclr -t digits --set pretrain.epochs=20 --set method.temperature=0.2
      pcfrl-bench run -m simclr -t digits --resume      # after an interruption
    """
    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    resolved = resolve(method, task, preset, seed, device, overrides)
    paths = RunPaths(out, cache_dir or user_cache_dir(), data_root or default_data_root())
    record = run(resolved, paths, RunOptions(resume=resume, restart=restart, progress=not no_progress), console)
    metric = record["metric"]
    final, best = record["metrics"].get(metric), record["best_over_epochs"].get(metric)
    table = Table(title=f"{method} on {task} ({preset}, seed {seed})")
    best_label = "best over epochs" + (f" (epoch {record['best_epoch']})" if record["best_epoch"] else "")
    for col in ("metric", "final epoch", best_label):
        table.add_column(col)
    for name, value in record["metrics"].items():
        best_value = record["best_over_epochs"].get(name)
        table.add_row(name, f"{value:.2f}", "" if best_value is None else f"{best_value:.2f}")
    stdout.print(table)
    stdout.print(f"{metric}: {final:.2f} (final epoch; best over epochs {best:.2f})")
    stdout.print(f"record: {record['_path']}", soft_wrap=True)


@main.command("config")
@common_run_options
@friendly_errors
def config_cmd(method, task, preset, seed, device, overrides):
    """Print the resolved config (YAML) of a run without running it.

    \b
    Examples:
      pcfrl-bench config -m simclr -t digits
      pcfrl-bench config -m simclr -t digits --preset paper --set pretrain.optim.lr=3e-4
    """
    resolved = resolve(method, task, preset, seed, device, overrides)
    click.echo(yaml.safe_dump(resolved.config.to_dict(), sort_keys=False), nl=False)


@main.command("results")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/runs"), show_default=True,
              help="Folder of result records.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@friendly_errors
def results_cmd(out: Path, as_json: bool) -> None:
    """List stored result records; corrupt records are reported by path and skipped.

    \b
    Examples:
      pcfrl-bench results
      pcfrl-bench results --out /tmp/runs --json
    """
    records, problems = load_records(out)
    for problem in problems:
        console.print(f"[yellow]warning:[/] {problem}", highlight=False)
    rows = [{"task": r["task"], "method": r["method"], "preset": r["preset"], "seed": r["seed"],
             "metric": r["metric"], "final": r["metrics"].get(r["metric"]),
             "best_over_epochs": r.get("best_over_epochs", {}).get(r["metric"]), "path": r["_path"]}
            for r in records]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    table = Table(title=f"Result records in {out}")
    for col in ("task", "method", "preset", "seed", "metric", "final", "best over epochs"):
        table.add_column(col)
    for row in rows:
        best = row["best_over_epochs"]
        table.add_row(row["task"], row["method"], row["preset"], str(row["seed"]), row["metric"],
                      f"{row['final']:.2f}", "" if best is None else f"{best:.2f}")
    stdout.print(table)


@main.group("data")
def data_group() -> None:
    """Inspect datasets on disk (see docs/datasets.md for where each one goes)."""


@data_group.command("check")
@click.option("--task", "-t", "task_name", required=True, help="Registered task (see `pcfrl-bench list`).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Dataset root [default: $PCFRL_DATA, else <cache dir>/data].")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (task, per-split counts, problems).")
@click.option("--decode", "decode_sample", type=int, default=16, show_default=True,
              help="Images per split decoded as a spot check (0 = none).")
@friendly_errors
def data_check_cmd(task_name: str, data_root: Path | None, as_json: bool, decode_sample: int) -> None:
    """Count a task's samples per split (pairs for verification, classes, subjects) and list every problem.

    Exits with status 1 when a problem is found.

    \b
    Examples:
      pcfrl-bench data check --task rafdb --data-root ~/data
      pcfrl-bench data check -t cplfw --json
    """
    from .tasks.check import check_task_by_name, format_check_report

    report = check_task_by_name(task_name, data_root or default_data_root(), decode_sample)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(format_check_report(report))
    if report["problems"]:
        sys.exit(1)


@main.command("tables")
@click.option("--records", type=click.Path(path_type=Path), multiple=True, default=[Path("results/runs")],
              show_default=True, help="Folder of result records to aggregate; repeatable.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True,
              help="Writes <out>/tables/tableNN.{md,csv,tex} and <out>/TABLES.md.")
@click.option("--preset", type=click.Choice(PRESETS), default="paper", show_default=True,
              help="Which preset's records fill the reproduced columns.")
@click.option("--selection", type=click.Choice(["final_epoch", "best_over_epochs"]), default="final_epoch",
              show_default=True, help="Probe model selection (best over epochs is marked with a dagger).")
@click.option("--variant", type=click.Choice(["paper", "synthetic"]), default="paper", show_default=True,
              help="paper: the paper's tasks; synthetic: the synth-* tasks standing in for them.")
@click.option("--paper-dir", type=click.Path(path_type=Path), default=None,
              help="Transcribed paper tables [default: the package's paper/ folder].")
@click.option("--any-config", is_flag=True,
              help="Also count records run with --set overrides (sweeps); by default only registry configs count.")
@friendly_errors
def tables_cmd(records, out, preset, selection, variant, paper_dir, any_config):
    """Render the paper's Tables 1-10 with reproduced values beside the paper's (Markdown, CSV, LaTeX).

    \b
    Examples:
      pcfrl-bench tables
      pcfrl-bench tables --variant synthetic --preset quick --records results/reference
      pcfrl-bench tables --selection best_over_epochs
      pcfrl-bench tables --records results/runs --records results/reference/complexity
    """
    written = render_all_tables(paper_dir or default_paper_dir(), records, out, preset=preset, selection=selection,
                                variant=variant, registry_hash=None if any_config else registry_result_hash)
    stdout.print(f"wrote {len(written)} files; overview: {written[-1] if written else '-'}", soft_wrap=True)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@main.command("grid")
@click.option("--methods", required=True, help="Comma-separated methods, e.g. simclr,pcl,pcfrl.")
@click.option("--tasks", required=True, help="Comma-separated tasks, e.g. synth-fer,synth-hpe.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds, e.g. 0,1,2.")
@click.option("--preset", "-p", type=click.Choice(PRESETS), default="quick", show_default=True)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override for every cell.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Parallel processes (one per method x seed).")
@click.option("--device", default="auto", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/runs"), show_default=True)
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--rerun", is_flag=True, help="Run cells even when a record with the same config is stored.")
@friendly_errors
def grid_cmd(methods, tasks, seeds, preset, overrides, jobs, device, out, data_root, cache_dir, rerun):
    """Run the cross product methods x tasks x seeds, pretraining each method once per seed.

    Cells whose record is already stored with the same resolved config are skipped.

    \b
    Examples:
      pcfrl-bench grid --methods simclr,pcl,pcfrl --tasks synth-fer,synth-hpe --seeds 0,1,2
      pcfrl-bench grid --methods simclr --tasks digits --seeds 0,1 --preset smoke --jobs 2
    """
    cells = grid_cells(_csv(methods), _csv(tasks), [int(s) for s in _csv(seeds)], preset, overrides)
    for cell in cells:  # fail fast on a typo before any training
        resolve(cell.method, cell.task, cell.preset, cell.seed, device, cell.overrides)
    paths = RunPaths(out, cache_dir or user_cache_dir(), data_root or default_data_root())
    records, skipped = run_grid(cells, paths, jobs=jobs, device=device, skip_existing=not rerun, console=console)
    stdout.print(f"{len(records)} cells run, {skipped} already stored; records in {out}", soft_wrap=True)


@main.command("check")
@click.option("--expected", type=click.Path(path_type=Path), default=None,
              help="Expected values with tolerances [default: the package's expected.yaml].")
@click.option("--subset", default=None, help="Only the cells tagged with this subset (e.g. ci).")
@click.option("--device", default="auto", show_default=True)
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--update", is_flag=True,
              help="Store the measured values as the new expected values (after a deliberate change).")
@friendly_errors
def check_cmd(expected, subset, device, data_root, cache_dir, update):
    """Re-run the expected cells and compare with the stored values; exit status 1 if any is off.

    \b
    Examples:
      pcfrl-bench check --subset ci
      pcfrl-bench check --expected my-expected.yaml
      pcfrl-bench check --subset ci --update     # accept new values after a deliberate change
    """
    expected = expected or catalog.resource_root() / "expected.yaml"
    expectations = load_expected(expected)
    results = check_expected(expectations, cache_dir or user_cache_dir(), data_root or default_data_root(),
                             subset=subset, device=device,
                             on_result=lambda r: console.print(
                                 f"{'[green]pass' if r.passed else '[red]FAIL'}[/] {r.expectation.cell.label}",
                                 highlight=False))
    table = Table(title=f"Regression check against {expected}" + (f" (subset {subset})" if subset else ""))
    for col in ("cell", "metric", "expected", "measured", "delta", "tolerance", "result"):
        table.add_column(col)
    for r in results:
        e = r.expectation
        table.add_row(e.cell.label, e.metric, f"{e.value:.4f}", "-" if r.measured is None else f"{r.measured:.4f}",
                      "-" if r.delta is None else f"{r.delta:+.4f}", f"{e.tolerance:g}",
                      "[green]pass[/]" if r.passed else f"[red]FAIL[/] {r.note}")
    stdout.print(table)
    failed = sum(not r.passed for r in results)
    if update:
        update_expected(expected, results)
        stdout.print(f"updated {len(results)} expected values in {expected}", soft_wrap=True)
        return
    stdout.print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@main.group("synth")
def synth_group() -> None:
    """The built-in synthetic face world: preview images, export datasets in official layouts."""


@synth_group.command("preview")
@click.option("--out", type=click.Path(path_type=Path), default=Path("synthetic-preview.png"), show_default=True)
@click.option("--identities", type=int, default=4, show_default=True, help="Rows of the grid.")
@click.option("--size", type=int, default=64, show_default=True, help="Rendered image size in pixels.")
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def synth_preview_cmd(out: Path, identities: int, size: int, seed: int) -> None:
    """Write a labelled grid: rows are identities, columns a yaw sweep then the 7 expressions.

    \b
    Examples:
      pcfrl-bench synth preview --out grid.png
      pcfrl-bench synth preview --out grid.png --identities 6 --size 96 --seed 3
    """
    stdout.print(f"wrote {preview_grid(out, identities, size, seed)}", soft_wrap=True)


@synth_group.command("export")
@click.option("--like", required=True, type=click.Choice(sorted(EXPORTERS)), help="Official layout to write.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder to write into.")
@click.option("--n", type=int, default=100, show_default=True, help="About how many samples (pairs for lfw/cplfw).")
@click.option("--seed", type=int, default=0, show_default=True)
@friendly_errors
def synth_export_cmd(like: str, out: Path, n: int, seed: int) -> None:
    """Write a small synthetic dataset in exactly the on-disk layout of a real one (see docs/datasets.md).

    Useful to see the layout a reader expects, and to test readers on realistic files.

    \b
    Examples:
      pcfrl-bench synth export --like cplfw --out /tmp/fake/CPLFW --n 200
      pcfrl-bench synth export --like rafdb --out /tmp/fake/RAF-DB && pcfrl-bench data check --task rafdb --data-root /tmp/fake
    """
    root = export_like(like, out, n, seed)
    stdout.print(f"wrote a {like}-like dataset at {root}", soft_wrap=True)


@main.command("analyze")
@common_run_options
@click.option("--n", type=int, default=256, show_default=True, help="Images in the analysed batch.")
@click.option("--out-dir", type=click.Path(path_type=Path), default=None,
              help="Where the .npz/.json go [default: results/reference/analysis].")
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@friendly_errors
def analyze_cmd(method, task, preset, seed, device, overrides, n, out_dir, data_root, cache_dir):
    """Analyse a pretrained checkpoint on a synthetic batch with ground truth.

    Pair-alignment and cosine score distributions for pose and face features, precision and recall of
    calibrated pairs for NPA vs cosine and threshold vs top-K, and features for t-SNE (the inputs of
    `pcfrl-bench figures`). Pretrains first if the checkpoint is not cached.

    \b
    Examples:
      pcfrl-bench analyze -m pcfrl -t synth-fer --preset quick
      pcfrl-bench analyze -m pcl -t synth-fer --preset quick --seed 1 --n 512
    """
    paths = RunPaths(Path("results/runs"), cache_dir or user_cache_dir(), data_root or default_data_root())
    written = analyze_checkpoint(method, task, preset, seed, tuple(overrides), paths, n, out_dir=out_dir,
                                 device=device, console=console)
    stdout.print(f"wrote {written} (+ .json summary)", soft_wrap=True)


@main.command("complexity")
@click.option("--methods", default="pcl,pcfrl", show_default=True, help="Comma-separated methods to measure together.")
@click.option("--task", "-t", default="rafdb", show_default=True,
              help="Task whose trunk, input size and pretraining batch size are used (no data is read).")
@click.option("--preset", "-p", type=click.Choice(PRESETS), default="paper", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed training steps per method.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA if present), cpu, cuda, cuda:N.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override for every method.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/runs"), show_default=True,
              help="Records go to <out>/complexity/<method>/<preset>-seed0.json.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@friendly_errors
def complexity_cmd(methods, task, preset, repeats, device, overrides, out, no_progress):
    """Measure paper Table 10: seconds per training step, FLOPs, MACs and parameters.

    Each method is built as a run of TASK at PRESET builds it and trained for 1 + REPEATS steps on one
    random batch (the first step counts FLOPs and warms up); the timed steps of all methods are taken in
    turns. The records fill Table 10's reproduced column in `pcfrl-bench tables`.

    \b
    Examples:
      pcfrl-bench complexity                                   # pcl vs pcfrl, paper setting (batch 256, 64 px)
      pcfrl-bench complexity --task synth-fer --preset quick --out results/reference
      pcfrl-bench complexity --methods simclr,pcl,pcfrl --set pretrain.batch_size=64 --device cuda
    """
    records = run_complexity(_csv(methods), task, preset, device, overrides, repeats, out, not no_progress, console)
    first = records[0]
    table = Table(title=f"Table 10 ({task}, {preset}: batch {first['batch_size']}, {first['image_size']} px, "
                        f"{first['device']}, {first['torch_threads']} thread(s))")
    for col in ("method", "time/step s (median)", "FLOPs G/image", "MACs G/image", "params M", "train GFLOPs/step"):
        table.add_column(col, justify="right")
    for r in records:
        m = r["metrics"]
        table.add_row(r["method"], f"{m['time_s']:.4f}", f"{m['flops_g']:.2f}", f"{m['macs_g']:.2f}",
                      f"{m['params_m']:.3f}", f"{m['train_gflops_per_step']:.1f}")
    stdout.print(table)
    stdout.print(f"records: {', '.join(r['_path'] for r in records)}", soft_wrap=True)


@main.command("figures")
@click.option("--records", type=click.Path(path_type=Path), default=Path("results/reference"), show_default=True,
              help="Result records (per-epoch calibration logs, sweeps).")
@click.option("--analysis", type=click.Path(path_type=Path), default=Path("results/reference/analysis"),
              show_default=True, help="Checkpoint analyses written by `pcfrl-bench analyze`.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results/figures"), show_default=True)
@friendly_errors
def figures_cmd(records: Path, analysis: Path, out: Path) -> None:
    """Render the figures (PNG) whose inputs exist; missing ones are listed in <out>/README.md.

    \b
    Examples:
      pcfrl-bench figures
      pcfrl-bench figures --records results/runs --out /tmp/figures
    """
    written = render_all_figures(records, analysis, out)
    stdout.print(f"wrote {len(written)} figures; index: {out / 'README.md'}", soft_wrap=True)

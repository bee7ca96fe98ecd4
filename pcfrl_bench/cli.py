"""The ``pcfrl-bench`` command line: parses options and calls the library; no logic of its own.

Every subcommand imports what it needs when it runs, so ``--help``, ``list``, ``config`` and ``results`` start
without loading torch, timm, plotting, tables or the synthetic renderer: they use ``resolution``, ``schema`` and
``data.task_data``, which import no torch (``tests/test_cli_surface.py`` checks it). ``--out`` is always a folder
of result records; inputs are ``--records``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from .config import EPOCHS_MAX, IMAGE_SIZE_MAX, PRESETS, SEED_MAX
from .errors import PcfrlError

RUNS = Path("results/runs")  # the default records folder, relative to the working directory
REFERENCE = Path("results/reference")  # the committed reference records of a checkout


def _escape(text: str) -> str:
    """Text from a user or a file, printed literally by rich (``[/x]`` is not markup)."""
    from rich.markup import escape

    return escape(text)


class CheckedPath(click.ParamType):
    """A path option checked when parsed, before any work: length, kind (file or folder), and that it can be
    written (``write``) or exists (``exists``); see ``inputs.check_path``. Defaults are checked too."""

    name = "path"

    def __init__(self, kind: str, write: bool = False, exists: bool = False):
        self.kind, self.write, self.exists = kind, write, exists

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        from .inputs import check_path

        try:
            return check_path(value, "", self.kind, write=self.write, exists=self.exists)
        except PcfrlError as err:
            self.fail(str(err), param, ctx)


READ_DIR, WRITE_DIR = CheckedPath("dir"), CheckedPath("dir", write=True)
READ_FILE, WRITE_FILE = CheckedPath("file", exists=True), CheckedPath("file", write=True)


def _console(stderr: bool = True) -> Any:
    from rich.console import Console

    return Console(stderr=stderr)


def friendly_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print user-facing errors as one message (no traceback) and exit with status 2. Ctrl-C, SIGTERM and
    SIGHUP stop the command cleanly (temp files removed, child processes stopped, see ``interrupt``) with one
    line and exit status 128 + the signal's number."""
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .interrupt import signals_raise

        try:
            with signals_raise():
                return func(*args, **kwargs)
        except PcfrlError as exc:
            _console().print(f"[bold red]Error:[/] {_escape(str(exc))}", markup=True, highlight=False)
            sys.exit(2)
        except KeyboardInterrupt as exc:
            name = getattr(exc, "name", "SIGINT (Ctrl-C)")
            _console().print(f"[bold red]Interrupted[/] by {name}: stopped; every record and checkpoint on disk is "
                             "whole and temporary files are removed (run or grid: the same command with --resume "
                             "continues)", markup=True, highlight=False)
            sys.exit(128 + getattr(exc, "signum", 2))
    return wrapper


def _set_threads(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """torch CPU threads, set when given (0 = torch's default); accepted before or after the subcommand."""
    if value:
        import torch

        torch.set_num_threads(value)
    return value


def threads_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--threads", type=click.IntRange(0, 1024), default=None, envvar="PCFRL_THREADS",
                        expose_value=False, callback=_set_threads, is_eager=True,
                        help="CPU threads for torch (0 = torch's default; env PCFRL_THREADS).")(func)


def renamed(old: str, new: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hidden option ``old`` that fails with a pointer to its new name ``new``."""
    def fail(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is not None:
            raise click.UsageError(f"{old} is now {new} (--out always names a folder of result records)")
    return click.option(old, hidden=True, expose_value=False, callback=fail)


def paths_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--data-root and --cache-dir of the commands that read data or checkpoints."""
    options = [
        click.option("--data-root", type=READ_DIR, default=None,
                     help="Dataset root [default: $PCFRL_DATA, else <user cache>/data]."),
        click.option("--cache-dir", type=WRITE_DIR, default=None,
                     help="Pretraining checkpoints and feature caches [default: $PCFRL_CACHE, else "
                          "~/.cache/pcfrl-bench]; the data root does not move with it."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run_paths(out: Path, data_root: Path | None, cache_dir: Path | None) -> Any:
    from .inputs import check_path
    from .io import default_data_root, user_cache_dir
    from .runner import RunPaths

    # the defaults (from $PCFRL_CACHE / $PCFRL_DATA or the user cache) get the options' checks
    cache_dir = cache_dir or check_path(user_cache_dir(), "the cache folder ($PCFRL_CACHE)", "dir", write=True)
    data_root = data_root or check_path(default_data_root(), "the data root ($PCFRL_DATA)", "dir")
    return RunPaths(out, cache_dir, data_root)


DEVICE = click.option("--device", default="auto", show_default=True, help="auto (CUDA if present), cpu, cuda, cuda:N.")
SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                   help="Override a config key (dotted, typed by the schema); repeatable, e.g. "
                        "--set pretrain.epochs=5 --set method.temperature=0.2")


def common_run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--method/--task/--preset/--seed/--device/--set shared by ``run``, ``config`` and ``analyze``."""
    options = [
        click.option("--method", "-m", default=None, help="Registered method (see `pcfrl-bench list`)."),
        click.option("--task", "-t", default=None, help="Registered task (see `pcfrl-bench list`)."),
        click.option("--preset", "-p", type=click.Choice(PRESETS), default=None,
                     help="Size preset: smoke (seconds, for tests), quick (minutes on a CPU), paper (the paper's) "
                          "[default: quick]."),
        click.option("--seed", type=int, default=None, help="Seed of pretraining and probe [default: 0]."),
        DEVICE, SET,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def config_file_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--config", "config_file", type=READ_FILE,
                        default=None, help="Replay a config printed by `pcfrl-bench config` (its run: section names "
                                           "method, task, preset and seed; --set still applies on top).")(func)


def _resolve(method: str | None, task: str | None, preset: str | None, seed: int | None, device: str,
             overrides: tuple[str, ...], config_file: Path | None = None) -> Any:
    from .resolution import resolve, resolve_file

    if config_file is not None:
        given = [name for name, value in (("--method", method), ("--task", task), ("--preset", preset),
                                           ("--seed", seed)) if value is not None]
        if given:
            raise click.UsageError(f"--config names the run itself; drop {', '.join(given)} (use --set on top)")
        return resolve_file(config_file, overrides, None if device == "auto" else device)  # else: the file's
    missing = [name for name, value in (("--method", method), ("--task", task)) if value is None]
    if missing:
        raise click.UsageError(f"Missing option {' and '.join(missing)} (or give --config FILE)")
    return resolve(method, task, preset or "quick", 0 if seed is None else seed, device, overrides)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pcfrl-bench")
@threads_option
def main() -> None:
    """Benchmark harness for pose-aware contrastive facial representation learning.

    Crosses registered methods (SimCLR, ...) with registered tasks (digits, ...): pretrain once per
    config, freeze the backbone, run the task's protocol, store a result record.

    \b
    Examples:
      pcfrl-bench list
      pcfrl-bench run --method simclr --task digits
      pcfrl-bench run -m simclr -t digits --preset smoke --set pretrain.epochs=2
      pcfrl-bench eval -t cplfw --checkpoint pcl_official.pth.tar
      pcfrl-bench config -m simclr -t digits --preset paper > my.yaml && pcfrl-bench run --config my.yaml
      pcfrl-bench results --csv
    """


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables (for scripts).")
@click.option("--data-root", type=READ_DIR, default=None,
              help="Dataset root used to report availability [default: $PCFRL_DATA or the user cache dir].")
@click.option("--pairs", is_flag=True,
              help="Also check every (method, task) pair at each preset: does its config resolve, does its model "
                   "build (no data, no training; seconds per preset).")
@click.option("--preset", "-p", "presets", type=click.Choice(PRESETS), multiple=True,
              help="With --pairs: the presets to check (repeatable) [default: all].")
@click.option("--method", "-m", "pair_methods", multiple=True, help="With --pairs: only these methods (repeatable).")
@click.option("--task", "-t", "pair_tasks", multiple=True, help="With --pairs: only these tasks (repeatable).")
@click.option("--readme", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Fill this file's <!-- registry:start --> ... <!-- registry:end --> section with the registry's "
                   "counts and presets (README.md; `make readme`) and stop.")
@friendly_errors
def list_cmd(as_json: bool, data_root: Path | None, pairs: bool, presets: tuple[str, ...],
             pair_methods: tuple[str, ...], pair_tasks: tuple[str, ...], readme: Path | None) -> None:
    """List registered methods and tasks, and whether each task's data is available.

    With --pairs, also the status of each (method, task) pair at each preset: 'builds' when the config
    resolves and the method's model is built from it, else the error `run` would stop with.

    \b
    Examples:
      pcfrl-bench list
      pcfrl-bench list --json | python -m json.tool
      pcfrl-bench list --pairs --preset smoke
      pcfrl-bench list --pairs -m pcfrl -t cplfw -t rafdb --json
    """
    from rich.table import Table

    from .io import default_data_root
    from .listing import registry_listing

    if readme is not None:
        from .reporting.facts import write_registry_facts

        _console(stderr=False).print(f"wrote {write_registry_facts(readme)}", soft_wrap=True, markup=False)
        return
    root = data_root or default_data_root()
    problems: list[str] = []
    data = registry_listing(root, problems)
    methods, tasks, datasets = data["methods"], data["tasks"], data["datasets"]
    for problem in problems:
        _console().print(f"[yellow]warning:[/] skipped a broken registry file: {_escape(problem)}", highlight=False)
    statuses = check_pairs(pair_methods or [m["name"] for m in methods], pair_tasks or [t["name"] for t in tasks],
                           presets or PRESETS, progress=not as_json) if pairs else None
    if as_json:
        if statuses is not None:
            data["pairs"] = [s.to_dict() for s in statuses]
        click.echo(json.dumps(data, indent=2))
        return
    stdout = _console(stderr=False)
    table = Table(title="Methods")
    for col in ("name", "description"):
        table.add_column(col)
    for m in methods:
        table.add_row(_escape(m["name"]), _escape(m["description"]))
    stdout.print(table)
    table = Table(title=f"Tasks (data root: {_escape(str(root))})")
    for col in ("name", "description", "metric", "data"):
        table.add_column(col)
    for t in tasks:
        mark = "[green]available[/]" if t["available"] else "[red]missing[/]"
        table.add_row(_escape(t["name"]), _escape(t["description"]), _escape(t["metric"]), mark)
    stdout.print(table)
    table = Table(title="Dataset formats (a task YAML's `dataset:`; `synth export --like` writes their layouts)")
    for col in ("name", "default folder", "description", "synth export --like", "pretraining sources"):
        table.add_column(col)
    for d in datasets:
        table.add_row(d["name"], d["folder"], d["description"], ", ".join(d["writes"]), ", ".join(d["sources"]))
    stdout.print(table)
    if statuses is not None:
        print_pairs(statuses)


def check_pairs(methods: list[str], tasks: list[str], presets: tuple[str, ...], progress: bool = True) -> list[Any]:
    """``pair_statuses`` with progress; unknown method or task names are an error first."""
    from . import catalog
    from .pairs import pair_statuses
    from .progress import reporting, stage

    for kind, names in (("method", methods), ("task", tasks)):
        for name in names:
            catalog.entry(kind, name)
    with reporting(_console(), progress), stage("checking pairs", len(methods) * len(tasks) * len(presets),
                                                "pairs") as bar:
        return pair_statuses(methods, tasks, presets, on_pair=lambda status: bar.advance())


def print_pairs(statuses: list[Any]) -> None:
    """One row per method, one column per preset: how many tasks build; then every pair that does not, and why."""
    from rich.table import Table

    stdout = _console(stderr=False)
    presets = list(dict.fromkeys(s.preset for s in statuses))
    by_method: dict[str, dict[str, list[Any]]] = {}
    for s in statuses:
        by_method.setdefault(s.method, {}).setdefault(s.preset, []).append(s)
    table = Table(title="Tasks each method builds on")
    for col in ("method", *presets):
        table.add_column(col)
    for method, cells in by_method.items():
        row = []
        for preset in presets:
            ok = sum(s.ok for s in cells[preset])
            unsupported = sum(not s.supported for s in cells[preset])
            colour = "green" if ok + unsupported == len(cells[preset]) else "red"
            note = f" ({unsupported} not supported)" if unsupported else ""
            row.append(f"[{colour}]{ok}/{len(cells[preset])}[/]{note}")
        table.add_row(method, *row)
    stdout.print(table)
    for s in statuses:
        if not s.ok:
            step = "not supported" if not s.supported else "does not resolve" if not s.resolves else "does not build"
            stdout.print(f"{s.method} x {s.task} ({s.preset}) {step}: {s.error}", highlight=False, markup=False,
                         soft_wrap=True)
    unsupported = sum(not s.supported for s in statuses)
    failing = sum(not s.ok for s in statuses) - unsupported
    stdout.print(f"{sum(s.ok for s in statuses)} of {len(statuses)} pairs build, {unsupported} not supported, "
                 f"{failing} failing.")


def _run_and_report(resolved: Any, out: Path, data_root: Path | None, cache_dir: Path | None, resume: bool,
                    restart: bool, no_progress: bool, unreadable: str, reference: Path | None = None) -> None:
    from rich.table import Table

    from .runner import RunOptions, run

    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    record = run(resolved, _run_paths(out, data_root, cache_dir),
                 RunOptions(resume=resume, restart=restart, progress=not no_progress, unreadable=unreadable),
                 _console())
    if record is None:  # a torchrun rank other than 0: rank 0 evaluates and reports
        return
    cfg = resolved.config.run
    metric = record.metric
    final, best = record.metrics.get(metric), record.best_over_epochs.get(metric)
    table = Table(title=f"{cfg.method} on {cfg.task} ({cfg.preset}, seed {cfg.seed})")
    best_label = "best over epochs" + (f" (epoch {record.best_epoch})" if record.best_epoch else "")
    for col in ("metric", "final epoch", best_label):
        table.add_column(col)
    for name, value in record.metrics.items():
        table.add_row(name, _number(value), _number(record.best_over_epochs.get(name)))
    stdout = _console(stderr=False)
    stdout.print(table)
    stdout.print(f"{metric}: {_number(final)} (final epoch; best over epochs {_number(best)})")
    kind, fmt = record.weights.get("kind"), record.weights["format"]
    what = f"{kind} ({fmt})" if kind and kind != fmt else fmt
    stdout.print(f"weights: {what} {record.checkpoint}", soft_wrap=True, markup=False)
    stdout.print(f"record: {record.path}" + ("" if record.registry_config else
                                             f" (config {record.config_hash[:8]}, not the registry's)"),
                 soft_wrap=True, markup=False)
    if reference is not None:
        _print_standing(record, reference)


def _print_standing(record: Any, reference: Path, readme: Path | None = None) -> None:
    from .reporting.standing import standing_text, write_readme_block

    text = standing_text(record, reference)
    if text is None:
        _console().print(f"No floor or ceiling of {record.task} at preset {record.preset} is stored in {reference} "
                         "to compare with (`make demo-reference` makes the demo's).", highlight=False, soft_wrap=True,
                         markup=False)
        return
    _console(stderr=False).print("\n" + text, highlight=False, markup=False, soft_wrap=True)
    if readme is not None:
        _console(stderr=False).print(f"wrote {write_readme_block(readme, text)}", soft_wrap=True, markup=False)


OUT = click.option("--out", type=WRITE_DIR, default=RUNS, show_default=True,
                   help="Folder of result records: <out>/<task>/<method>/<preset>-seed<seed>[-<config hash>].json.")
REFERENCE_OPTION = click.option(
    "--reference", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Afterwards place the result beside the floors, ceiling and same-method runs stored in this folder (same "
         "task and preset) and the paper's number for the task (`make demo`: results/reference).")
RUN_FLAGS = [
    click.option("--resume", is_flag=True, help="Continue an interrupted pretraining from its last checkpoint."),
    click.option("--restart", is_flag=True, help="Discard an existing checkpoint of this config and pretrain again."),
    click.option("--no-progress", is_flag=True, help="Hide progress bars."),
    click.option("--unreadable", type=click.Choice(["stop", "skip"]), default="stop", show_default=True,
                 help="Evaluation images that cannot be decoded (all are decoded once, before pretraining): stop "
                      "with their list, or skip them (and pairs that use them) and list them in the record."),
]


@main.command("run")
@common_run_options
@config_file_option
@OUT
@paths_options
@RUN_FLAGS[0]
@RUN_FLAGS[1]
@RUN_FLAGS[2]
@RUN_FLAGS[3]
@REFERENCE_OPTION
@threads_option
@friendly_errors
def run_cmd(method, task, preset, seed, device, overrides, config_file, out, data_root, cache_dir, resume, restart,
            no_progress, unreadable, reference):
    """Pretrain METHOD (or reuse its cached checkpoint), freeze it, evaluate on TASK, store the record.

    The checkpoint is keyed by a hash of the resolved pretraining config, so a second task with the
    same method and settings never pretrains twice. Frozen features are cached per checkpoint, task,
    split and image size. A run whose config differs from the registry's (--set, --config, a checkpoint)
    is stored under a name with its config hash, so it never replaces a registry record.

    \b
    Examples:
      pcfrl-bench run --method simclr --task digits
      pcfrl-bench run -m simclr -t digits --preset smoke --seed 1 --out /tmp/runs
      pcfrl-bench run -m simclr -t digits --set pretrain.epochs=20 --set method.temperature=0.2
      pcfrl-bench run -m simclr -t digits --resume      # after an interruption
      pcfrl-bench run -m pcl -t cplfw --set model.checkpoint=pcl.pth.tar   # evaluate given weights
      pcfrl-bench run --config my.yaml --set eval.probe.epochs=50
      torchrun --nproc_per_node 2 -m pcfrl_bench run -m pcfrl -t synth-fer   # DDP, global batch unchanged
      pcfrl-bench --threads 1 run -m pcfrl -t synth-fer -p demo --reference results/reference   # = make demo
    """
    resolved = _resolve(method, task, preset, seed, device, overrides, config_file)
    _run_and_report(resolved, out, data_root, cache_dir, resume, restart, no_progress, unreadable, reference)


@main.command("eval")
@click.option("--task", "-t", required=True, help="Registered task whose protocol is run (see `pcfrl-bench list`).")
@click.option("--checkpoint", required=True, type=READ_FILE,
              help="Weights: this project's last.pt or backbone.pt, the official PCL checkpoint, a timm or "
                   "torchvision ResNet state dict, a facecycle trunk (prefixes such as module.encoder_q. are "
                   "stripped); what it holds is detected and printed.")
@click.option("--method", "-m", default="checkpoint", show_default=True,
              help="Method whose config builds the backbone (the default takes the task's backbone as is).")
@click.option("--preset", "-p", type=click.Choice(PRESETS), default="quick", show_default=True,
              help="Size preset of the task's evaluation (image size, probe schedule).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the probe.")
@click.option("--non-strict", is_flag=True,
              help="Load even when backbone keys are missing (they stay random; the record lists them); refused "
                   "when the file fills less than half of the trunk's tensors.")
@DEVICE
@SET
@OUT
@paths_options
@RUN_FLAGS[2]
@RUN_FLAGS[3]
@REFERENCE_OPTION
@threads_option
@friendly_errors
def eval_cmd(task, checkpoint, method, preset, seed, non_strict, device, overrides, out, data_root, cache_dir,
             no_progress, unreadable, reference):
    """Run TASK's protocol on given weights, without pretraining (`run --set model.checkpoint=PATH` with the
    model settings the file implies).

    What the file holds is detected from its keys and shapes and printed: this project's last.pt or
    backbone.pt (the model of its config.yaml), the official PCL checkpoint (facecycle at its width, [0, 1]
    inputs), a timm or torchvision ResNet state dict (depth, width and stem; ImageNet normalisation), a
    facecycle trunk. The detected settings (model.backbone, model.width, model.input_norm, ...) come before
    your --set, which wins. The record stores the kind, the file's SHA-256 and how many trunk tensors loaded.

    \b
    Examples:
      pcfrl-bench eval -t digits --checkpoint ~/.cache/pcfrl-bench/pretrain/simclr/<hash>/backbone.pt
      pcfrl-bench eval -t cplfw --checkpoint PCL_official.pth.tar
      pcfrl-bench eval -t stl10 --checkpoint moco_v2_800ep.pth.tar   # detected: timm:resnet50, ImageNet norm
    """
    from .models.detect import describe, detect_for_eval

    detection = detect_for_eval(checkpoint, overrides)
    given = [f"model.checkpoint={checkpoint.resolve()}", *(detection.overrides() if detection else []),
             *(["model.strict=false"] if non_strict else [])]
    resolved = _resolve(method, task, preset, seed, device, tuple(given) + tuple(overrides))
    for line in describe(detection, resolved.config.model) if detection else []:
        _console().print(line, highlight=False, markup=False, soft_wrap=True)
    _run_and_report(resolved, out, data_root, cache_dir, False, False, no_progress, unreadable, reference)


@main.command("config")
@common_run_options
@config_file_option
@friendly_errors
def config_cmd(method, task, preset, seed, device, overrides, config_file):
    """Print the resolved config (YAML) of a run without running it; `run --config FILE` replays it.

    \b
    Examples:
      pcfrl-bench config -m simclr -t digits
      pcfrl-bench config -m simclr -t digits --preset paper --set pretrain.optim.lr=3e-4 > my.yaml
      pcfrl-bench run --config my.yaml
    """
    import yaml

    resolved = _resolve(method, task, preset, seed, device, overrides, config_file)
    click.echo(yaml.safe_dump(resolved.config.to_dict(), sort_keys=False), nl=False)


def _number(value: object) -> str:
    """A metric for a table cell: two decimals, '-' when missing (null), as stored when not a number."""
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)


@main.command("standing")
@click.argument("record_file", metavar="RECORD", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reference", type=click.Path(file_okay=False, path_type=Path), default=REFERENCE, show_default=True,
              help="Folder of the records with the floors, ceiling and reference runs (same task and preset).")
@click.option("--readme", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also fill this file's <!-- demo:start --> ... <!-- demo:end --> section (`make demo-reference`).")
@friendly_errors
def standing_cmd(record_file: Path, reference: Path, readme: Path | None) -> None:
    """Place a stored result beside its task's floors and ceiling, its method's reference runs and the paper's number.

    \b
    Examples:
      pcfrl-bench standing results/runs/synth-fer/pcfrl/demo-seed0.json
      pcfrl-bench standing results/runs/synth-fr/simclr/quick-seed1.json --reference results/reference
    """
    from .results import read_record

    _print_standing(read_record(record_file), reference, readme)


@main.command("results")
@click.option("--records", type=READ_DIR, default=RUNS, show_default=True,
              help="Folder of result records to list.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (one row per record, primary metric).")
@click.option("--registry-only", is_flag=True, help="Only records made with the registry's configs.")
@click.option("--wide", is_flag=True, help="Every column, however wide the terminal (by default columns that do not "
                                          "fit are left out and named; numbers are never cut).")
@renamed("--out", "--records")
@friendly_errors
def results_cmd(records: Path, as_json: bool, as_csv: bool, registry_only: bool, wide: bool) -> None:
    """List stored result records with their config hash and overrides; corrupt records are reported and skipped.

    The table fits the terminal: columns that do not fit are left out (overrides, config, best over epochs,
    then metric and preset), and the output says which; --wide, --csv and --json show them all.

    `registry` says whether a record was made with the registry's config of its method and task (what the
    tables count) or is a variant (--set overrides, --config, an evaluated checkpoint).

    \b
    Examples:
      pcfrl-bench results
      pcfrl-bench results --records results/reference --registry-only --csv > reference.csv
      pcfrl-bench results --records /tmp/runs --json
    """
    import csv

    from .results import load_records, record_rows
    from .resolution import registry_result_hash

    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    found, problems = load_records(records)
    console = _console()
    for problem in problems:
        console.print(f"[yellow]warning:[/] {_escape(problem)}", highlight=False)
    rows = [row for row in record_rows(found, registry_result_hash) if row["registry"] or not registry_only]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if as_csv:
        from .reporting.escape import csv_cell  # a name from a record never runs as a spreadsheet formula

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["task"], lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
        return
    from rich.console import Console

    from .reporting.columns import fitted_table, table_width

    header = ["task", "method", "preset", "seed", "metric", "final", "best over epochs", "config", "overrides"]
    cells = [[str(row["task"]), str(row["method"]), str(row["preset"]), str(row["seed"]), str(row["metric"]),
              _number(row["final"]), _number(row["best_over_epochs"]),
              row["config_hash"] + ("" if row["registry"] else " (variant)"), row["overrides"]] for row in rows]
    stdout = _console(stderr=False)
    table, dropped = fitted_table(f"Result records in {records}", header, cells, None if wide else stdout.width,
                                  droppable=["overrides", "config", "best over epochs", "metric", "preset"],
                                  numeric=["seed", "final", "best over epochs"])
    if wide:  # every column at its full width, however wide the terminal
        natural = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(header)]
        stdout = Console(width=max(stdout.width, table_width(natural)))
    stdout.print(table)
    if dropped:
        stdout.print(f"Left out to fit {stdout.width} columns: {', '.join(dropped)}. All columns: --wide (or a "
                     "wider terminal), --csv or --json.", highlight=False)


@main.group("data")
def data_group() -> None:
    """Inspect datasets on disk (see docs/datasets.md for where each one goes)."""


@data_group.command("check")
@click.option("--task", "-t", "task_name", required=True, help="Registered task (see `pcfrl-bench list`).")
@click.option("--data-root", type=READ_DIR, default=None,
              help="Dataset root [default: $PCFRL_DATA, else <user cache>/data].")
@click.option("--set", "overrides", multiple=True, metavar="task.KEY=VALUE",
              help="Override a task key (e.g. --set task.test_usage=PublicTest); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (task, per-split counts, problems).")
@click.option("--decode", "decode_sample", default="auto", show_default=True, metavar="auto|all|N",
              help="Images decoded: auto = every image of a set up to 60,000 images (about a minute), else a "
                   "sample of 60,000 stratified by split and class; all = every image; N = a stratified sample of N "
                   "(0 = none).")
@friendly_errors
def data_check_cmd(task_name: str, data_root: Path | None, overrides: tuple[str, ...], as_json: bool,
                   decode_sample: str) -> None:
    """Count a task's samples per split (pairs for verification, classes, subjects) and list every problem.

    Exits with status 1 when a problem is found.

    \b
    Examples:
      pcfrl-bench data check --task rafdb --data-root ~/data
      pcfrl-bench data check -t cplfw --json
      pcfrl-bench data check -t fer2013 --set task.test_usage=PublicTest
      pcfrl-bench data check -t disfa --decode all   # decode every image of a large set, as `run` does
    """
    from .io import default_data_root
    from .progress import reporting
    from .tasks.check import check_task_by_name, format_check_report

    from .inputs import quote

    if decode_sample not in ("auto", "all") and not (decode_sample.isdigit() and len(decode_sample) <= 9):
        raise click.BadParameter(f"expected auto, all or a number of images up to 999,999,999, got "
                                 f"{quote(decode_sample)}", param_hint="--decode")
    count = decode_sample if decode_sample in ("auto", "all") else int(decode_sample)
    with reporting(_console(), not as_json):  # decoding every image of a large dataset takes a while
        report = check_task_by_name(task_name, data_root or default_data_root(), count, overrides)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo(format_check_report(report))
    if report["problems"]:
        sys.exit(1)


PAPER_RECORDS = (RUNS, REFERENCE / "complexity")  # `make tables`: your runs, plus the committed Table 10 records


@main.command("tables")
@click.option("--records", type=READ_DIR, multiple=True, default=None,
              help="Folder of result records to aggregate; repeatable [default: results/runs and "
                   "results/reference/complexity for the paper variant, results/reference for the synthetic one].")
@click.option("--tables-dir", type=WRITE_DIR, default=Path("results"), show_default=True,
              help="Writes <dir>/tables/tableNN.{md,csv,tex} and <dir>/TABLES.md (TABLES_SYNTHETIC.md).")
@click.option("--preset", type=click.Choice(PRESETS), default=None,
              help="Which preset's records fill the reproduced columns [default: paper for the paper variant, "
                   "quick for the synthetic one].")
@click.option("--selection", type=click.Choice(["final_epoch", "best_over_epochs"]), default="final_epoch",
              show_default=True, help="Probe model selection (best over epochs is marked with a dagger).")
@click.option("--variant", type=click.Choice(["paper", "synthetic"]), default=None,
              help="paper: the paper's tasks; synthetic: the synth-* tasks standing in for them [default: both].")
@click.option("--paper-dir", type=CheckedPath("dir", exists=True), default=None,
              help="Transcribed paper tables [default: the package's paper/ folder].")
@click.option("--any-config", is_flag=True,
              help="Also count records run with --set overrides (sweeps); by default only registry configs count.")
@renamed("--out", "--tables-dir")
@friendly_errors
def tables_cmd(records, tables_dir, preset, selection, variant, paper_dir, any_config):
    """Render the paper's Tables 1-10 with reproduced values beside the paper's (Markdown, CSV, LaTeX).

    Without --variant both variants are written, exactly as `make tables` does.

    \b
    Examples:
      pcfrl-bench tables
      pcfrl-bench tables --variant synthetic --preset quick --records results/reference
      pcfrl-bench tables --variant paper --selection best_over_epochs --tables-dir /tmp/tables
    """
    from .reporting.paper import default_paper_dir
    from .reporting.tables import render_all_tables
    from .resolution import registry_result_hash

    defaults = {"paper": (list(PAPER_RECORDS), "paper"), "synthetic": ([REFERENCE], "quick")}
    stdout = _console(stderr=False)
    for name in [variant] if variant else list(defaults):
        roots, default_preset = defaults[name]
        written = render_all_tables(paper_dir or default_paper_dir(), list(records) or roots, tables_dir,
                                    preset=preset or default_preset, selection=selection, variant=name,
                                    registry_hash=None if any_config else registry_result_hash)
        stdout.print(f"{name}: wrote {len(written)} files; overview: {written[-1] if written else '-'}",
                     soft_wrap=True, markup=False)
        for root in list(records) or roots:
            if not Path(root).is_dir():
                _console().print(f"note: no folder {root}, so no records from it", highlight=False, soft_wrap=True,
                                 markup=False)


@main.command("claims")
@click.option("--records", type=READ_DIR, multiple=True, default=[REFERENCE],
              show_default=True, help="Folder of result records; repeatable.")
@click.option("--preset", type=click.Choice(PRESETS), default="quick", show_default=True,
              help="Which preset's records to compare.")
@click.option("--report", type=WRITE_FILE, default=Path("results/CLAIMS.md"),
              show_default=True, help="The Markdown report to write.")
@click.option("--readme", type=CheckedPath("file", write=True, exists=True), default=None,
              help="Also fill this file's <!-- claims:start --> ... <!-- claims:end --> section (e.g. README.md).")
@click.option("--any-config", is_flag=True, help="Also count records run with --set overrides.")
@renamed("--out", "--report")
@friendly_errors
def claims_cmd(records, preset, report, readme, any_config):
    """Test the paper's claims C1-C6 on stored records: effect, 95 % CI over seeds, verdict.

    Each comparison is paired by seed; a task whose supervised ceiling misses its learnability requirement
    makes its comparisons inconclusive. The rule is in docs/claims.md.

    \b
    Examples:
      pcfrl-bench claims
      pcfrl-bench claims --records results/reference --readme README.md
    """
    from .reporting.claims import render_claims
    from .reporting.columns import fitted_table
    from .resolution import registry_result_hash

    outcomes, bounds_md, written = render_claims(records, report, preset,
                                                 None if any_config else registry_result_hash, readme)
    header = ["claim", "method", "baseline", "task", "n", "effect", "95 % CI", "verdict"]
    rows = [[o.comparison.claim, o.comparison.method, o.comparison.baseline, o.comparison.task, str(o.n),
             f"{o.effect:.3g}", "-" if o.low != o.low else f"[{o.low:.3g}, {o.high:.3g}]", o.verdict]
            for o in outcomes]
    stdout = _console(stderr=False)
    stdout.print(fitted_table(None, header, rows, stdout.width, droppable=[], numeric=["n", "effect", "95 % CI"])[0])
    stdout.print(f"wrote {', '.join(map(str, written))}", soft_wrap=True, markup=False)


@main.command("instrument")
@click.option("--records", type=READ_DIR, multiple=True, default=[REFERENCE],
              show_default=True, help="Folder of result records; repeatable.")
@click.option("--preset", type=click.Choice(PRESETS), default="quick", show_default=True,
              help="Which preset's records to place.")
@click.option("--methods", default="simclr,moco,pcl,pcfrl", show_default=True,
              help="Methods to place between floor (0) and ceiling (1).")
@click.option("--any-config", is_flag=True, help="Also count records run with --set overrides.")
@friendly_errors
def instrument_cmd(records, preset, methods, any_config):
    """Print each task's floors (trivial, raw pixels, random init), ceiling (supervised) and learnability.

    \b
    Example:
      pcfrl-bench instrument --records results/reference --preset quick
    """
    from .reporting.claims import record_tasks
    from .reporting.instrument import bounds_frame, bounds_markdown, instrument_reading
    from .reporting.tables import aggregate_records, load_record_folders, records_frame
    from .resolution import registry_result_hash

    found, problems = load_record_folders(records, None if any_config else registry_result_hash)
    names = tuple(_csv(methods))
    frame = bounds_frame(aggregate_records(records_frame(found), preset),
                         record_tasks([r for r in found if r.preset == preset]), names)
    _console(stderr=False).print(bounds_markdown(frame, names), soft_wrap=True)
    for sentence in instrument_reading(frame, names):
        _console(stderr=False).print(f"- {sentence}", soft_wrap=True, markup=False, highlight=False)
    for p in problems:
        _console().print(f"[yellow]skipped:[/] {_escape(p)}", soft_wrap=True)


SEED = click.IntRange(-SEED_MAX - 1, SEED_MAX)


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def cluster_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """grid's executor, plan (--shard, --dry-run, --print-commands, --status) and Slurm options."""
    options = [
        click.option("--executor", type=click.Choice(["local", "slurm"]), default="local", show_default=True,
                     help='local: processes on this machine (--jobs); slurm: a Slurm job array through submitit '
                          '(pip install "pcfrl-bench[cluster]").'),
        click.option("--shard", default=None, metavar="I/N",
                     help="Only shard I of N (1-based): whole pretraining groups, the same on every machine; "
                          "shards 1/N..N/N add up to the grid."),
        click.option("--dry-run", is_flag=True,
                     help="List every cell (hashes, stored record, checkpoint), the Slurm job parameters and an "
                          "estimate of the pretraining's GPU-hours; run nothing."),
        click.option("--print-commands", is_flag=True,
                     help="Print one `pcfrl-bench run ...` line per cell left to run (for any other scheduler)."),
        click.option("--status", is_flag=True,
                     help="Which cells are done, running, pending, failed (with the log) or missing."),
        click.option("--jobs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Slurm job logs and cell states [default: <out>/.jobs]."),
        click.option("--cluster-config", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     envvar="PCFRL_CLUSTER_CONFIG",
                     help="YAML file with a 'slurm:' section (the keys of the --slurm-* options; env "
                          "PCFRL_CLUSTER_CONFIG); the options win."),
        click.option("--slurm-partition", default=None, help="Partition [default: the cluster's]."),
        click.option("--slurm-time", default=None, help="Wall-clock limit per job: minutes, HH:MM:SS or D-HH:MM:SS "
                                                        "[default: 24:00:00]."),
        click.option("--slurm-gpus-per-node", type=click.IntRange(min=0), default=None,
                     help="GPUs per job; > 1 pretrains each cell under torchrun, one process per GPU [default: 1]."),
        click.option("--slurm-cpus-per-task", type=click.IntRange(min=1), default=None,
                     help="CPUs per job [default: 8]."),
        click.option("--slurm-mem", default=None, help="Memory per job, e.g. 64G [default: the partition's]."),
        click.option("--slurm-array-parallelism", type=click.IntRange(min=1), default=None,
                     help="Jobs of the array running at once [default: 64]."),
        click.option("--slurm-additional", multiple=True, metavar="KEY=VALUE",
                     help="Another sbatch option, e.g. account=abc or qos=high (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _seeds(value: str) -> list[int]:
    """``--seeds 0,1,2``: integers in the seed range, or a usage error naming the bad item."""
    from .inputs import quote

    try:
        return [SEED.convert(int(item), None, None) for item in _csv(value)]
    except ValueError:
        bad = next(item for item in _csv(value) if not item.lstrip("+-").isdigit())
        raise click.BadParameter(f"{quote(bad)} is not an integer", param_hint="'--seeds'") from None
    except click.BadParameter as err:
        raise click.BadParameter(err.message, param_hint="'--seeds'") from None


@main.command("grid")
@click.option("--methods", required=True, help="Comma-separated methods, e.g. simclr,pcl,pcfrl.")
@click.option("--tasks", required=True, help="Comma-separated tasks, e.g. synth-fer,synth-hpe.")
@click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds, e.g. 0,1,2.")
@click.option("--preset", "-p", type=click.Choice(PRESETS), default="quick", show_default=True,
              help="Size preset of every cell.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override for every cell (dotted, typed by the schema); repeatable.")
@click.option("--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Parallel processes (one per method x seed).")
@DEVICE
@OUT
@paths_options
@click.option("--rerun", is_flag=True, help="Run cells even when a record with the same config is stored.")
@click.option("--resume", is_flag=True, help="Continue interrupted pretrainings from their last checkpoints.")
@click.option("--restart", is_flag=True, help="Discard interrupted or unreadable checkpoints and pretrain again.")
@cluster_options
@threads_option
@friendly_errors
def grid_cmd(methods, tasks, seeds, preset, overrides, jobs, device, out, data_root, cache_dir, rerun, resume, restart,
             executor, shard, dry_run, print_commands, status, jobs_dir, cluster_config, slurm_additional, **slurm):
    """Run the cross product methods x tasks x seeds, pretraining each method once per seed.

    Cells whose record is already stored with the same resolved config are skipped. With --executor slurm each
    pretraining group (the cells sharing one checkpoint) is one job of a Slurm job array.

    \b
    Examples:
      pcfrl-bench grid --methods simclr,pcl,pcfrl --tasks synth-fer,synth-hpe --seeds 0,1,2
      pcfrl-bench grid --methods simclr --tasks digits --seeds 0,1 --preset smoke --jobs 2
      pcfrl-bench grid --methods pcl,pcfrl --tasks rafdb,cplfw --seeds 0,1,2 --preset paper --dry-run
      pcfrl-bench grid ... --executor slurm --slurm-partition gpu --slurm-time 2-00:00:00 --shard 1/2
      pcfrl-bench grid ... --status
    """
    from .cluster import grid_status, make_jobs, slurm_lines, slurm_settings, status_counts, status_table, submit
    from .gridplan import (dry_run_rows, dry_run_table, estimate, estimate_lines, groups_to_run, parse_shard,
                           plan_grid, planned_cells, run_command, shell_line, step_times)
    from .gridplan import shard as take_shard
    seed_list = _seeds(seeds)
    if not (_csv(methods) and _csv(tasks) and seed_list):
        raise click.UsageError("--methods, --tasks and --seeds must each name at least one item")
    from .grid import grid_cells, run_grid
    from .runner import RunOptions

    modes = [name for name, on in (("--dry-run", dry_run), ("--print-commands", print_commands), ("--status", status))
             if on]
    if len(modes) > 1:
        raise click.UsageError(f"{' and '.join(modes)} exclude each other")
    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    given = [f"--{k.replace('_', '-')}" for k, v in slurm.items() if v is not None] + ["--slurm-additional"] * bool(
        slurm_additional)
    if executor == "local" and given:
        raise click.UsageError(f"{', '.join(given)}: only with --executor slurm")
    if executor == "slurm" and jobs != 1:
        raise click.UsageError("--jobs: only with --executor local (Slurm runs --slurm-array-parallelism jobs at once)")
    settings = None
    if executor == "slurm":
        settings = slurm_settings(cluster_config, slurm_additional, **{k.removeprefix("slurm_"): v
                                                                      for k, v in slurm.items()})
    paths = _run_paths(out, data_root, cache_dir)
    jobs_dir = jobs_dir or out / ".jobs"
    cells = grid_cells(_csv(methods), _csv(tasks), seed_list, preset, overrides)
    groups = plan_grid(cells, paths.cache_dir)  # resolves every cell: a typo fails before anything runs
    if shard:
        groups = take_shard(groups, *parse_shard(shard))
    stdout = _console(stderr=False)
    if not stdout.is_terminal:  # piped: wide enough for the tables' rows
        stdout.width = 160
    if status:
        statuses = grid_status(planned_cells(groups), out, jobs_dir)
        stdout.print(status_table(statuses))
        stdout.print(status_counts(statuses), soft_wrap=True)
        return
    todo = groups_to_run(groups, out, rerun)
    left_out = len(planned_cells(groups)) - len(planned_cells(todo))
    if print_commands:
        for planned in planned_cells(todo):
            click.echo(shell_line(run_command(planned.cell, out, cache_dir=cache_dir, data_root=data_root,
                                              device=device, resume=resume, restart=restart)))
        _console().print(f"{left_out} stored cells left out (--rerun includes them)", soft_wrap=True)
        return
    if dry_run:
        rows = dry_run_rows(groups, todo, out)
        stdout.print(dry_run_table(rows))
        stored = sum(r.record is not None for r in rows)
        stdout.print(f"{len(rows)} cells in {len(groups)} pretraining group(s){f' (shard {shard})' if shard else ''}: "
                     f"{stored} stored, {len(planned_cells(todo))} to run", soft_wrap=True)
        if executor == "slurm":
            for line in slurm_lines(settings, len(todo)):
                stdout.print(line, soft_wrap=True, highlight=False)
        for line in estimate_lines(estimate(todo, paths.data_root, step_times(out, preset))):
            stdout.print(line, soft_wrap=True, highlight=False)
        return
    options = RunOptions(resume=resume, restart=restart)
    if executor == "slurm":
        submitted = submit(make_jobs(todo, paths, jobs_dir, settings, device=device, options=options,
                                     skip_existing=not rerun), settings, jobs_dir)
        for job in submitted:
            stdout.print(f"job {job.job_id}: {job.cells} cell(s), log {job.log}", soft_wrap=True, highlight=False)
        stdout.print(f"{len(submitted)} job(s) submitted, {left_out} cells already stored; records in {out}; "
                     "follow them with the same command and --status", soft_wrap=True)
        return
    records, skipped = run_grid([p.cell for p in planned_cells(groups)], paths, jobs=jobs, device=device,
                                skip_existing=not rerun, console=_console(), options=options)
    stdout.print(f"{len(records)} cells run, {skipped} already stored; records in {out}", soft_wrap=True,
                 markup=False)


@main.command("check")
@click.option("--expected", type=READ_FILE, default=None,
              help="Expected values with tolerances [default: the package's expected.yaml].")
@click.option("--subset", default=None, help="Only the cells tagged with this subset (e.g. ci).")
@DEVICE
@paths_options
@click.option("--update", is_flag=True,
              help="Store the measured values as the new expected values (after a deliberate change).")
@threads_option
@friendly_errors
def check_cmd(expected, subset, device, data_root, cache_dir, update):
    """Re-run the expected cells and compare with the stored values; exit status 1 if any is off.

    \b
    Examples:
      pcfrl-bench check --subset ci
      pcfrl-bench check --expected my-expected.yaml
      pcfrl-bench check --subset ci --update     # accept new values after a deliberate change
    """
    from rich.table import Table

    from .catalog import resource_root
    from .grid import check_expected, load_expected, update_expected

    expected = expected or resource_root() / "expected.yaml"
    expectations = load_expected(expected)
    paths = _run_paths(RUNS, data_root, cache_dir)
    console, stdout = _console(), _console(stderr=False)
    results = check_expected(expectations, paths.cache_dir, paths.data_root, subset=subset, device=device,
                             on_result=lambda r: console.print(
                                 f"{'[green]pass' if r.passed else '[red]FAIL'}[/] {r.expectation.cell.label}",
                                 highlight=False))
    table = Table(title=f"Regression check against {_escape(str(expected))}"
                        + (f" (subset {_escape(subset)})" if subset else ""))
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
        stdout.print(f"updated {len(results)} expected values in {expected}", soft_wrap=True, markup=False)
        return
    stdout.print(f"{len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


@main.group("synth")
def synth_group() -> None:
    """The built-in synthetic face world: preview images, export datasets in official layouts."""


@synth_group.command("preview")
@click.option("--png", type=WRITE_FILE, default=Path("synthetic-preview.png"),
              show_default=True, help="The PNG file to write.")
@click.option("--identities", type=click.IntRange(1, 64), default=4, show_default=True, help="Rows of the grid.")
@click.option("--size", type=click.IntRange(8, IMAGE_SIZE_MAX), default=64, show_default=True,
              help="Rendered image size in pixels.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the drawn identities and factors.")
@renamed("--out", "--png")
@friendly_errors
def synth_preview_cmd(png: Path, identities: int, size: int, seed: int) -> None:
    """Write a labelled grid: rows are identities, columns a yaw sweep then the 7 expressions.

    \b
    Examples:
      pcfrl-bench synth preview --png grid.png
      pcfrl-bench synth preview --png grid.png --identities 6 --size 96 --seed 3
    """
    from .data.synthetic import preview_grid

    _console(stderr=False).print(f"wrote {preview_grid(png, identities, size, seed)}", soft_wrap=True, markup=False)


@synth_group.command("export")
@click.option("--like", required=True, metavar="LAYOUT",
              help="Official layout to write: one that a registered dataset format writes (`pcfrl-bench list` shows "
                   "them).")
@click.option("--dataset-dir", type=WRITE_DIR, required=True,
              help="Folder to write the dataset into.")
@click.option("--n", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="About how many samples (pairs for lfw/cplfw).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the drawn identities and factors.")
@renamed("--out", "--dataset-dir")
@friendly_errors
def synth_export_cmd(like: str, dataset_dir: Path, n: int, seed: int) -> None:
    """Write a small synthetic dataset in exactly the on-disk layout of a real one (see docs/datasets.md).

    Useful to see the layout a reader expects, and to test readers on realistic files.

    \b
    Examples:
      pcfrl-bench synth export --like cplfw --dataset-dir /tmp/fake/CPLFW --n 200
      pcfrl-bench synth export --like rafdb --dataset-dir /tmp/fake/RAF-DB && pcfrl-bench data check --task rafdb --data-root /tmp/fake
    """
    from .data.readers import export_like

    root = export_like(like, dataset_dir, n, seed)
    _console(stderr=False).print(f"wrote a {like}-like dataset at {root}", soft_wrap=True, markup=False)


@main.command("analyze")
@common_run_options
@click.option("--n", type=click.IntRange(2, 65_536), default=256, show_default=True,
              help="Images in the analysed batch.")
@click.option("--analysis-dir", type=WRITE_DIR, default=RUNS / "analysis",
              show_default=True, help="Where the .npz/.json go (results/reference/analysis for the committed ones).")
@click.option("--summary-only", is_flag=True,
              help="Write only the JSON summary (the numbers `pcfrl-bench claims` reads), not the .npz for figures.")
@click.option("--factors", is_flag=True,
              help="Factor probes instead: how well a linear probe decodes each ground-truth factor of the synthetic "
                   "world (expression, AUs, identity, pose, light, background, clip) from the frozen features, beside "
                   "random-init and raw pixels; writes <stem>-factors.json and .png.")
@click.option("--identities", type=click.IntRange(min=4, max=2000), default=100, show_default=True,
              help="With --factors: unseen people rendered for the probes (x clips x 8 frames).")
@paths_options
@renamed("--out-dir", "--analysis-dir")
@threads_option
@friendly_errors
def analyze_cmd(method, task, preset, seed, device, overrides, n, analysis_dir, summary_only, factors, identities,
                data_root, cache_dir):
    """Analyse a pretrained checkpoint on a synthetic batch with ground truth.

    Pair-alignment and cosine score distributions for pose and face features, precision and recall of
    calibrated pairs for NPA vs cosine and threshold vs top-K, and features for t-SNE (the inputs of
    `pcfrl-bench figures`). Pretrains first if the checkpoint is not cached. With --factors: the factor
    probes (0 = chance, 1 = perfect; decodability for classes, R^2 for continuous factors).

    \b
    Examples:
      pcfrl-bench analyze -m pcfrl -t synth-fer --preset quick
      pcfrl-bench analyze -m pcl -t synth-fer --preset quick --seed 1 --n 512
      pcfrl-bench analyze -m simclr -t synth-fer --preset quick --factors
    """
    from .analysis import analysis_stem, analyze_checkpoint

    if method is None or task is None:
        raise click.UsageError("analyze needs --method and --task")
    if factors:
        _analyze_factors(method, task, preset or "quick", seed or 0, tuple(overrides), device, identities,
                         _run_paths(RUNS, data_root, cache_dir), analysis_dir,
                         analysis_stem(method, task, preset or "quick", seed or 0))
        return
    written = analyze_checkpoint(method, task, preset or "quick", seed or 0, tuple(overrides),
                                 _run_paths(RUNS, data_root, cache_dir), n, out_dir=analysis_dir, device=device,
                                 console=_console(), summary_only=summary_only)
    _console(stderr=False).print(f"wrote {written}" + ("" if summary_only else " (+ .json summary)"), soft_wrap=True,
                                 markup=False)


def _analyze_factors(method, task, preset, seed, overrides, device, identities, paths, analysis_dir, stem) -> None:
    from rich.table import Table

    from .factor_analysis import analyze_factors, factor_table, write_factor_report

    report = analyze_factors(method, task, preset, seed, overrides, paths, identities=identities, device=device,
                             console=_console())
    rows = factor_table(report)
    table = Table(title=f"factor probes ({report['n_images']} images of {identities} unseen people; "
                        "0 = chance, 1 = perfect)")
    for i, head in enumerate(rows[0]):
        table.add_column(head, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows[1:]:
        table.add_row(*row)
    out = _console(stderr=False)
    out.print(table)
    out.print(f"wrote {write_factor_report(report, analysis_dir, stem)} (+ .png)", soft_wrap=True, markup=False)


@main.command("complexity")
@click.option("--methods", default="pcl,pcfrl", show_default=True, help="Comma-separated methods to measure together.")
@click.option("--task", "-t", default="rafdb", show_default=True,
              help="Task whose trunk, input size and pretraining batch size are used (no data is read).")
@click.option("--preset", "-p", type=click.Choice(PRESETS), default="paper", show_default=True,
              help="Size preset the methods are built with.")
@click.option("--repeats", type=click.IntRange(1, 10_000), default=3, show_default=True,
              help="Timed training steps per method.")
@DEVICE
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override for every method.")
@click.option("--out", type=WRITE_DIR, default=RUNS, show_default=True,
              help="Folder of result records: they go to <out>/complexity/<method>/<preset>-seed0.json.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@threads_option
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
    from rich.table import Table

    from .runner import run_complexity

    records = run_complexity(_csv(methods), task, preset, device, overrides, repeats, out, not no_progress,
                             _console())
    first = records[0]
    table = Table(title=f"Table 10 ({task}, {preset}: batch {first.batch_size}, "
                        f"{first.image_size} px, {first.device}, {first.torch_threads} thread(s))")
    for col in ("method", "time/step s (median)", "FLOPs G/image", "MACs G/image", "params M", "train GFLOPs/step",
                "train GFLOP/s"):
        table.add_column(col, justify="right")
    for r in records:
        m = r.metrics
        table.add_row(r.method, f"{m['time_s']:.4f}", f"{m['flops_g']:.2f}", f"{m['macs_g']:.2f}",
                      f"{m['params_m']:.3f}", f"{m['train_gflops_per_step']:.1f}", f"{m['train_gflops_per_s']:.1f}")
    stdout = _console(stderr=False)
    stdout.print(table)
    stdout.print(f"records: {', '.join(str(r.path) for r in records)}", soft_wrap=True, markup=False)


@main.command("figures")
@click.option("--records", type=READ_DIR, default=REFERENCE, show_default=True,
              help="Result records (per-epoch calibration logs, sweeps).")
@click.option("--analysis", type=READ_DIR, default=REFERENCE / "analysis",
              show_default=True, help="Checkpoint analyses written by `pcfrl-bench analyze`.")
@click.option("--figures-dir", type=WRITE_DIR, default=Path("results/figures"),
              show_default=True, help="Where the PNGs and their README.md index go.")
@renamed("--out", "--figures-dir")
@friendly_errors
def figures_cmd(records: Path, analysis: Path, figures_dir: Path) -> None:
    """Render the figures (PNG) whose inputs exist; missing ones are listed in <figures-dir>/README.md.

    \b
    Examples:
      pcfrl-bench figures
      pcfrl-bench figures --records results/runs --analysis results/runs/analysis --figures-dir /tmp/figures
    """
    from .reporting.figures import render_all_figures

    written = render_all_figures(records, analysis, figures_dir)
    _console(stderr=False).print(f"wrote {len(written)} figures; index: {figures_dir / 'README.md'}", soft_wrap=True,
                                 markup=False)


@main.command("curves")
@click.option("--methods", "-m", default="simclr,pcl,pcfrl", show_default=True,
              help="Comma-separated methods that pretrain (one line each).")
@click.option("--tasks", "-t", default="synth-fer,synth-fr,synth-au,synth-hpe", show_default=True,
              help="Comma-separated tasks (one panel each).")
@click.option("--preset", "-p", type=click.Choice(PRESETS), default="quick", show_default=True,
              help="Size preset of every pretraining and evaluation (the bands: reference records of this preset).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the pretrainings and the probes.")
@click.option("--every", type=click.IntRange(1, EPOCHS_MAX), default=None,
              help="Epochs between points: a trunk is kept at epoch 0, every N-th epoch and the last "
                   "(pretrain.snapshot_every) [default: the preset's pretrain.checkpoint_every].")
@DEVICE
@SET
@click.option("--curves-dir", type=WRITE_DIR, default=RUNS / "curves", show_default=True,
              help="Where the points go: <curves-dir>/<task>/<method>/<preset>-seed<seed>.json (points stored there "
                   "with the same config are not measured again).")
@click.option("--figure", type=WRITE_FILE, default=None,
              help="The PNG to write [default: <curves-dir>/learning_curves_<preset>.png].")
@click.option("--reference", type=click.Path(file_okay=False, path_type=Path), default=REFERENCE, show_default=True,
              help="Records with the floors and the ceiling drawn as bands (registry configs of the preset).")
@paths_options
@RUN_FLAGS[0]
@RUN_FLAGS[1]
@RUN_FLAGS[2]
@RUN_FLAGS[3]
@renamed("--out", "--curves-dir")
@threads_option
@friendly_errors
def curves_cmd(methods, tasks, preset, seed, every, device, overrides, curves_dir, figure, reference, data_root,
               cache_dir, resume, restart, no_progress, unreadable):
    """Learning curves: each task's metric against pretraining steps, one line per method, floors and ceiling as bands.

    Each method pretrains once (or its cached pretraining is reused) keeping its trunk every --every epochs; every
    kept trunk is evaluated on each task with the task's own protocol (frozen features cached as for `run`), so the
    last point is what `run` gives. A cached pretraining made without those snapshots is an error that says to add
    --restart. Lower-is-better metrics (HPE MAE) are drawn on an inverted axis: better is up in every panel.

    \b
    Examples:
      pcfrl-bench --threads 1 curves --preset quick --every 2
      pcfrl-bench curves -m simclr,pcfrl -t synth-fer --preset smoke --figure /tmp/curves.png
      pcfrl-bench curves --preset quick --curves-dir results/reference/curves \\
          --figure results/figures/learning_curves_quick.png              # = make curves
    """
    from rich.table import Table

    from .curves import draw_curves, learning_curves, resolve_curves
    from .runner import RunOptions

    if resume and restart:
        raise click.UsageError("--resume and --restart exclude each other")
    if not (_csv(methods) and _csv(tasks)):
        raise click.UsageError("--methods and --tasks must each name at least one item")
    pairs = resolve_curves(_csv(methods), _csv(tasks), preset, seed, overrides, every, device)
    options = RunOptions(resume=resume, restart=restart, progress=not no_progress, unreadable=unreadable)
    console = _console()
    curves = learning_curves(pairs, _run_paths(curves_dir, data_root, cache_dir), curves_dir, options, console)
    written, notes = draw_curves(curves, reference, preset, figure or curves_dir / f"learning_curves_{preset}.png")
    for note in notes:
        console.print(f"[yellow]note:[/] {_escape(note)}", highlight=False, soft_wrap=True)
    table = Table(title=f"Learning curves ({preset}, seed {seed})")
    for col in ("method", "task", "metric", "points", "steps", "first", "last"):
        table.add_column(col, justify="left" if col in ("method", "task", "metric") else "right")
    for c in curves:
        first, last = c.points[0], c.points[-1]
        arrow = "↑" if c.higher_is_better else "↓"
        table.add_row(c.method, c.task, f"{c.metric} {arrow}", str(len(c.points)), f"{first.step}-{last.step}",
                      _number(first.value), _number(last.value))
    stdout = _console(stderr=False)
    stdout.print(table)
    stdout.print(f"curves: {curves_dir}; figure: {written}", soft_wrap=True, markup=False)

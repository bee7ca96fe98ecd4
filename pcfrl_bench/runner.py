"""One benchmark run, in the order the data flows: resolve the config (``resolution``), the task's data, the
trained encoder (``pretraining``: pretrained, reused or loaded), frozen features (``evaluation``), the task's
protocol, the result record (``results``)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from .config import TASK_SOURCE, config_hash, to_plain
from .distributed import launch_rank
from .errors import ConfigError, DatasetLayoutError, ResultNotSavedError
from .evaluation.features import FeatureSet, cached_features, degeneration_warnings, extract_features
from .io import ensure_writable_dir
from .pretraining import (Encoder, RunOptions, RunPaths, build_method, ensure_pretrained, obtain_encoder,  # noqa: F401
                          pretrain_dir, resolve_device, weights_origin)
from .progress import reporting, stage
from .resolution import Resolved, resolve
from .results import COMPLEXITY_TASK, ResultRecord, write_record
from .tasks import TASKS, Task, default_task  # noqa: F401  (default_task: part of the runner's API)
from .tasks.base import EvalResult, Supervision

# ``build_method``, ``ensure_pretrained``, ``pretrain_dir``, ``RunOptions``, ``RunPaths``: the runner's API, kept
# where callers import them from (they live in the training layer, ``pretraining``)


def build_task(resolved: Resolved, data_root: Path) -> Task:
    return TASKS.get(resolved.task.implementation)(resolved.task, resolved.config.task, data_root,
                                                   resolved.config.data)


UNREADABLE_POLICIES = ("stop", "skip")


def task_supervision(resolved: Resolved, task: Task) -> Supervision | None:
    """The task's labelled training data when the method pretrains on it (``data.source: task``), else None."""
    cfg = resolved.config
    return task.supervision(cfg.data) if cfg.data.source == TASK_SOURCE and not cfg.model.checkpoint else None


def prepare_task(resolved: Resolved, paths: RunPaths, options: RunOptions, console: Console
                 ) -> tuple[Task, dict[str, list[str]]]:
    """The task with its data checked before any work: available, ``--out`` writable, every evaluation image
    decoded once (``options.unreadable``); returns the task and the images left out per split."""
    task = build_task(resolved, paths.data_root)
    available, where = task.availability()
    if not available:
        raise DatasetLayoutError(where)
    ensure_writable_dir(paths.out_dir, "--out")  # before any work, so a finished result always has a home
    return task, apply_unreadable_policy(task, options.unreadable, console)


def apply_unreadable_policy(task: Task, policy: str, console: Console) -> dict[str, list[str]]:
    """Decode every evaluation image once, before any pretraining. ``stop``: raise listing the unreadable
    files; ``skip``: leave them (and pairs that use them) out, and return them per split for the record."""
    if policy not in UNREADABLE_POLICIES:
        raise ConfigError(f"unknown policy for unreadable images {policy!r}; choose {' or '.join(UNREADABLE_POLICIES)}")
    bad = task.unreadable_images()
    if not bad:
        return {}
    listed = {split: [where for _, where in found] for split, found in bad.items()}
    lines = [f"{split}: {where}" for split, wheres in listed.items() for where in wheres]
    shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else "")
    if policy == "stop":
        raise DatasetLayoutError(f"{len(lines)} image(s) of task {task.name} cannot be decoded:\n  {shown}\n"
                                 "Replace or delete them, or run with --unreadable skip to leave them out "
                                 "(they are listed in the record).")
    task.drop_samples({split: [pos for pos, _ in found] for split, found in bad.items()})
    console.print(f"[yellow]warning:[/] left out {len(lines)} unreadable image(s):\n  {escape(shown)}", highlight=False)
    return listed


def task_features(task: Task, encoder: Encoder, resolved: Resolved, paths: RunPaths, device: torch.device,
                  progress: bool, console: Console) -> dict[str, FeatureSet]:
    """Frozen features of every split, cached per (checkpoint, task, split, image size)."""
    cfg = resolved.config
    size = cfg.eval.image_size
    identity = {"task": resolved.task.implementation, "params": to_plain(cfg.task)}
    data_identity = task.data_identity()
    if data_identity:  # real datasets: where they were read from and their sizes
        identity["data"] = data_identity
    task_key = config_hash(identity)[:8]
    trunk = encoder.method.encoder()
    out = {}
    for split, dataset in task.splits(size).items():
        path = paths.cache_dir / "features" / encoder.cache_key / f"{task.name}-{task_key}-{split}-{size}px.pt"
        out[split], _ = cached_features(path, lambda ds=dataset, s=split: extract_features(
            trunk, ds, cfg.eval.feature_batch_size, device, num_workers=cfg.data.num_workers, progress=progress,
            console=console, description=f"features {task.name}/{s}"))
    return out


def evaluate_encoder(task: Task, encoder: Encoder, resolved: Resolved, paths: RunPaths, device: torch.device,
                     progress: bool, console: Console) -> tuple[EvalResult, list[str], float]:
    """The task's protocol on the encoder's frozen features (cached): its result, the warnings about degenerate
    features (printed too) and the seconds it took."""
    started = time.perf_counter()
    features = task_features(task, encoder, resolved, paths, device, progress, console)
    warnings = degeneration_warnings(features)
    for line in warnings:
        console.print(f"[yellow]warning:[/] {escape(line)}", highlight=False)
    with stage(f"evaluate {task.name} ({task.protocol})"):
        result = task.evaluate(features, resolved.config.eval, resolved.config.run.seed, device)
    return result, warnings, time.perf_counter() - started


def run(resolved: Resolved, paths: RunPaths, options: RunOptions | None = None,
        console: Console | None = None) -> ResultRecord | None:
    """Data, encoder, features, protocol, record: write the result record and return it.

    Under torchrun all ranks pretrain together; evaluation and the record are rank 0's, the other ranks
    return None.
    """
    options = options or RunOptions()
    console = console or Console()
    with reporting(console, options.progress and launch_rank() == 0):
        return _run(resolved, paths, options, console)


def _run(resolved: Resolved, paths: RunPaths, options: RunOptions, console: Console) -> ResultRecord | None:
    cfg = resolved.config
    device = resolve_device(cfg.run.device)
    task, unreadable = prepare_task(resolved, paths, options, console)
    encoder = obtain_encoder(resolved, paths, device, options, console, task_supervision(resolved, task))
    if encoder is None:
        return None
    result, warnings, eval_s = evaluate_encoder(task, encoder, resolved, paths, device, options.progress, console)
    record = ResultRecord.create(
        cfg, method=cfg.run.method, task=cfg.run.task, preset=cfg.run.preset, seed=cfg.run.seed,
        implementation=resolved.method.implementation, metric=resolved.task.metric,
        higher_is_better=resolved.task.higher_is_better, protocol=task.protocol, model_selection="final_epoch",
        metrics=result.metrics, trivial=result.trivial, best_over_epochs=result.best_over_epochs,
        best_epoch=result.best_epoch, counts=result.counts, registry_config=resolved.is_registry,
        overrides=list(resolved.overrides),
        pretrain_hash=None if encoder.report else cfg.pretrain_hash(resolved.method.implementation),
        checkpoint=encoder.checkpoint, checkpoint_digest=encoder.digest, weights=weights_origin(cfg, encoder.report),
        reused_checkpoint=encoder.reused, warnings=warnings, unreadable_images=unreadable, device=str(device),
        wall_time_s={"pretrain": encoder.pretrain_s, "eval": eval_s}, pretrain_log=encoder.log(),
        processes=encoder.processes, precision=cfg.pretrain.precision)
    _store_record(record, paths)
    return record


def _store_record(record: ResultRecord, paths: RunPaths) -> Path:
    """Write the record under ``paths.out_dir``; if that fails, into the cache and raise, so a finished
    result is never lost (the error names where it went and repeats the metrics)."""
    try:
        return write_record(paths.out_dir, record)
    except OSError as err:
        failure = f"the result record could not be written under {paths.out_dir} ({err.strerror or err})"
    metrics = ", ".join(f"{k} {v}" for k, v in record.metrics.items())
    try:
        kept = write_record(paths.cache_dir / "unsaved-records", record)
    except OSError:
        raise ResultNotSavedError(f"{failure}, nor in the cache. Metrics: {metrics}. Record:\n"
                                  f"{json.dumps(record.to_json(), sort_keys=True, default=str)}") from None
    raise ResultNotSavedError(f"{failure}; it was saved as {kept} instead. Metrics: {metrics}")


def run_complexity(methods: list[str], task: str, preset: str, device: str = "auto",
                   overrides: tuple[str, ...] | list[str] = (), repeats: int = 3, out_dir: Path = Path("results/runs"),
                   progress: bool = True, console: Console | None = None) -> list[ResultRecord]:
    """Paper Table 10 for ``methods``, built as a run of ``task`` at ``preset`` builds them (same trunk,
    input size and batch size), measured together; one record per method under task ``complexity``."""
    from .evaluation.complexity import PROTOCOL as COMPLEXITY_PROTOCOL, measure_complexity  # slow to import
    console = console or Console()
    resolved = {name: resolve(name, task, preset, 0, device, overrides) for name in dict.fromkeys(methods)}
    sizes = {(r.config.pretrain.batch_size, r.config.data.image_size) for r in resolved.values()}
    if len(sizes) != 1:
        raise ConfigError(f"the methods resolve to different (batch size, image size) pairs {sorted(sizes)}; "
                          "set them with --set pretrain.batch_size=... --set data.image_size=...")
    (batch_size, image_size), dev = sizes.pop(), resolve_device(device)
    built = {name: build_method(r) for name, r in resolved.items()}
    pretrain = {name: r.config.pretrain for name, r in resolved.items()}
    started = time.perf_counter()
    with reporting(console, progress), stage(f"Table 10 (batch {batch_size}, {image_size} px, {dev})",
                                             len(built) * (1 + repeats), "steps") as bar:
        measured = measure_complexity(built, pretrain, batch_size, image_size, dev, repeats,
                                      on_step=lambda name, phase: bar.advance())
    wall = time.perf_counter() - started
    records = []
    for name, m in measured.items():
        record = ResultRecord.create(
            resolved[name].config, method=name, task=COMPLEXITY_TASK, preset=preset, seed=0, domain_task=task,
            implementation=resolved[name].method.implementation, metric="time_s", higher_is_better=False,
            protocol=COMPLEXITY_PROTOCOL, metrics=m.metrics(), step_times_s=list(m.step_times_s),
            batch_size=batch_size, image_size=image_size, repeats=repeats, measured_with=list(built),
            registry_config=not overrides, overrides=list(overrides), device=str(dev),
            device_name=torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
            wall_time_s={"measure": wall})
        write_record(out_dir, record)
        records.append(record)
    return records

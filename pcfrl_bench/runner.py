"""One benchmark run: resolve the config (``resolution``), pretrain (or reuse the cached checkpoint), evaluate,
store a record."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console

from .config import TASK_SOURCE, RunConfig, config_hash, to_plain
from .data.sources import build_source
from .distributed import barrier, is_main, launch_rank, process_group, world_size
from .errors import ConfigError, DatasetLayoutError, PcfrlError, ResultNotSavedError
from .evaluation.features import FeatureSet, cached_features, degeneration_warnings, extract_features
from .io import atomic_torch_save, atomic_write_text, ensure_writable_dir, folder_lock
from .methods import METHODS, Method
from .models.backbones import build_backbone, feature_dim
from .models.weights import LoadReport, backbone_state, load_backbone
from .progress import reporting, stage
from .resolution import Resolved, resolve
from .results import COMPLEXITY_TASK, ResultRecord, write_record
from .tasks import TASKS, Task, default_task  # noqa: F401  (default_task: part of the runner's API)
from .tasks.base import Supervision
from .train import CHECKPOINT, checkpoint_state, load_weights, pretrain, read_log, seed_everything, state_digest

BACKBONE_FILE = "backbone.pt"  # the trunk's weights with stripped keys, written next to every pretraining checkpoint


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; an explicit CUDA request without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available on this machine (use cpu or auto)")
    return device


def build_task(resolved: Resolved, data_root: Path) -> Task:
    return TASKS.get(resolved.task.implementation)(resolved.task, resolved.config.task, data_root)


def build_method(resolved: Resolved, supervision: Supervision | None = None) -> Method:
    """The method with its backbone, initialised from the run seed (same seed -> same initial weights).
    ``supervision`` (the supervised ceiling) sets the method's target key, outputs and loss from the task."""
    cfg = resolved.config
    params = cfg.method
    if supervision is not None:
        params = dataclasses.replace(params, target=supervision.target, outputs=supervision.outputs,
                                     loss=supervision.loss)
    seed_everything(cfg.run.seed)
    backbone = build_backbone(cfg.model)
    dim = feature_dim(backbone, cfg.data.image_size)
    return METHODS.get(resolved.method.implementation)(params, backbone, dim, cfg.data.image_size)


@dataclass
class RunPaths:
    out_dir: Path
    cache_dir: Path
    data_root: Path


UNREADABLE_POLICIES = ("stop", "skip")


@dataclass
class RunOptions:
    resume: bool = False
    restart: bool = False
    progress: bool = True
    unreadable: str = "stop"  # evaluation images that cannot be decoded: stop before pretraining, or skip them
    notes: list[str] = field(default_factory=list)


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
    console.print(f"[yellow]warning:[/] left out {len(lines)} unreadable image(s):\n  {shown}", highlight=False)
    return listed


def pretrain_dir(resolved: Resolved, cache_dir: Path) -> Path:
    impl = resolved.method.implementation
    return cache_dir / "pretrain" / impl / resolved.config.pretrain_hash(impl)[:16]


def ensure_pretrained(resolved: Resolved, paths: RunPaths, device: torch.device, options: RunOptions,
                      console: Console, task: Task | None = None) -> tuple[Method, Path, bool, float]:
    """(trained method, checkpoint folder, whether the checkpoint was reused, pretraining seconds).
    With ``data.source: task`` (the supervised ceiling) the task's labelled training data is the pretraining data.

    The checkpoint folder is locked meanwhile: a second run of the same config waits, then reuses it."""
    run_dir = pretrain_dir(resolved, paths.cache_dir)
    # under torchrun rank 0 alone holds the lock: the other ranks are the same job and wait at its barriers
    lock = folder_lock(run_dir, on_wait=lambda line: console.print(f"Waiting: {line}", highlight=False))
    with lock if is_main() else contextlib.nullcontext():
        return _pretrained_locked(resolved, run_dir, paths, device, options, console, task)


def _pretrained_locked(resolved: Resolved, run_dir: Path, paths: RunPaths, device: torch.device, options: RunOptions,
                       console: Console, task: Task | None) -> tuple[Method, Path, bool, float]:
    cfg = resolved.config
    supervision = None
    if cfg.data.source == TASK_SOURCE:
        supervision = (task or build_task(resolved, paths.data_root)).supervision(cfg.data)
    method = build_method(resolved, supervision)
    if options.restart and is_main() and run_dir.exists():  # before reading: a corrupt checkpoint must not block it
        shutil.rmtree(run_dir)
    barrier()  # under torchrun: every rank reads the folder after rank 0 cleared it
    state = checkpoint_state(run_dir)
    if state is not None and state.complete:
        console.print(f"Reusing cached pretraining checkpoint {run_dir} ({state.epoch} epochs, same config hash)")
        load_weights(method, run_dir)
        _write_backbone(method, run_dir)
        return method.to(device), run_dir, True, 0.0
    if state is not None and not options.resume:
        raise PcfrlError(f"An interrupted pretraining with this config exists in {run_dir} (epoch {state.epoch}/"
                         f"{cfg.pretrain.epochs}). Pass --resume to continue it or --restart to discard it.")
    impl = resolved.method.implementation
    if is_main():
        atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.pretrain_identity(impl), sort_keys=False))
    dataset = supervision.dataset if supervision is not None else build_source(cfg.data, paths.data_root)
    if state is not None:
        console.print(f"Resuming pretraining from epoch {state.epoch} in {run_dir}")
    outcome = pretrain(method, dataset, cfg.pretrain, run_dir, seed=cfg.run.seed, device=device,
                       num_workers=cfg.data.num_workers, resume=options.resume, progress=options.progress,
                       console=console, description=f"pretrain {cfg.run.method}",
                       metadata={"pretrain_hash": cfg.pretrain_hash(impl)})
    _write_backbone(method, run_dir)
    if console is not None:  # a fresh pretraining says where its checkpoint went
        console.print(f"Pretraining checkpoint: {run_dir / CHECKPOINT} (trunk only: {run_dir / BACKBONE_FILE})",
                      soft_wrap=True)
    return method, run_dir, False, outcome.wall_time_s


def _write_backbone(method: Method, run_dir: Path) -> None:
    """``backbone.pt``: the trunk's state dict with stripped keys, so others can load it (weights only)."""
    if not (run_dir / BACKBONE_FILE).is_file():
        atomic_torch_save(backbone_state(method), run_dir / BACKBONE_FILE)


def load_given_weights(resolved: Resolved, device: torch.device, console: Console) -> tuple[Method, LoadReport]:
    """The method with its trunk loaded from ``model.checkpoint`` (no pretraining)."""
    cfg = resolved.config
    method = build_method(resolved)
    report = load_backbone(method.backbone, Path(cfg.model.checkpoint).expanduser(), cfg.model.strict)
    ignored = f", {len(report.ignored)} tensors outside the trunk ignored" if report.ignored else ""
    note = f"; layers left random: {', '.join(report.missing)}" if report.missing else ""
    console.print(f"  tensors loaded: {report.loaded}/{report.total} of the trunk{ignored}{note} (no pretraining; "
                  f"sha256 {report.sha256[:16]}...)", soft_wrap=True, highlight=False)
    return method.to(device), report


def weights_origin(cfg: RunConfig, report: LoadReport | None) -> dict[str, Any]:
    """Where the evaluated trunk's weights came from (the record's ``weights``)."""
    if report is not None:
        return report.to_dict()
    if cfg.model.pretrained:
        return {"format": "timm-pretrained", "path": cfg.model.pretrained_file or "timm's default source"}
    return {"format": "pcfrl-bench", "path": None}


def task_features(task: Task, encoder: torch.nn.Module, resolved: Resolved, ckpt_key: str, paths: RunPaths,
                  device: torch.device, progress: bool, console: Console) -> dict[str, FeatureSet]:
    """Frozen features of every split, cached per (checkpoint, task, split, image size)."""
    cfg = resolved.config
    size = cfg.eval.image_size
    identity = {"task": resolved.task.implementation, "params": to_plain(cfg.task)}
    data_identity = task.data_identity()
    if data_identity:  # real datasets: where they were read from and their sizes
        identity["data"] = data_identity
    task_key = config_hash(identity)[:8]
    out = {}
    for split, dataset in task.splits(size).items():
        path = paths.cache_dir / "features" / ckpt_key / f"{task.name}-{task_key}-{split}-{size}px.pt"
        out[split], _ = cached_features(path, lambda ds=dataset, s=split: extract_features(
            encoder, ds, cfg.eval.feature_batch_size, device, num_workers=cfg.data.num_workers, progress=progress,
            console=console, description=f"features {task.name}/{s}"))
    return out


def run(resolved: Resolved, paths: RunPaths, options: RunOptions | None = None,
        console: Console | None = None) -> ResultRecord | None:
    """Pretrain (or reuse), evaluate, write the result record and return it.

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
    task = build_task(resolved, paths.data_root)
    available, where = task.availability()
    if not available:
        raise DatasetLayoutError(where)
    ensure_writable_dir(paths.out_dir, "--out")  # before any work, so a finished result always has a home
    unreadable = apply_unreadable_policy(task, options.unreadable, console)
    report, run_dir = None, None
    if cfg.model.checkpoint:  # given weights: nothing to train, one process evaluates
        method, report = load_given_weights(resolved, device, console)
        reused, pretrain_s, processes = False, 0.0, 1
    else:
        with process_group(device) as device:
            method, run_dir, reused, pretrain_s = ensure_pretrained(resolved, paths, device, options, console, task)
            processes, main = world_size(), is_main()
        if not main:
            return None
    started = time.perf_counter()
    digest = state_digest(method.encoder().state_dict())
    # any re-pretraining that changes the weights misses the cache; given weights are keyed by what they are
    ckpt_key = f"{run_dir.name if run_dir else 'given'}-{digest[:16]}"
    features = task_features(task, method.encoder(), resolved, ckpt_key, paths, device, options.progress, console)
    warnings = degeneration_warnings(features)
    for line in warnings:
        console.print(f"[yellow]warning:[/] {line}", highlight=False)
    with stage(f"evaluate {task.name} ({task.protocol})"):
        result = task.evaluate(features, cfg.eval, cfg.run.seed, device)
    eval_s = time.perf_counter() - started
    impl = resolved.method.implementation
    record = ResultRecord.create(
        cfg, method=cfg.run.method, task=cfg.run.task, preset=cfg.run.preset, seed=cfg.run.seed,
        implementation=impl, metric=resolved.task.metric, higher_is_better=resolved.task.higher_is_better,
        protocol=task.protocol, model_selection="final_epoch", metrics=result.metrics, trivial=result.trivial,
        best_over_epochs=result.best_over_epochs, best_epoch=result.best_epoch, counts=result.counts,
        registry_config=resolved.is_registry, overrides=list(resolved.overrides),
        pretrain_hash=None if report else cfg.pretrain_hash(impl),
        checkpoint=str(run_dir) if run_dir else report.path, checkpoint_digest=digest,
        weights=weights_origin(cfg, report), reused_checkpoint=reused, warnings=warnings,
        unreadable_images=unreadable, device=str(device), wall_time_s={"pretrain": pretrain_s, "eval": eval_s},
        pretrain_log=read_log(run_dir) if run_dir else [], processes=processes, precision=cfg.pretrain.precision)
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
    optim = {name: r.config.pretrain.optim for name, r in resolved.items()}
    started = time.perf_counter()
    with reporting(console, progress), stage(f"Table 10 (batch {batch_size}, {image_size} px, {dev})",
                                             len(built) * (1 + repeats), "steps") as bar:
        measured = measure_complexity(built, optim, batch_size, image_size, dev, repeats,
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

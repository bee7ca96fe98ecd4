"""Learning curves (``pcfrl-bench curves``): each method pretrained once with its trunk kept along the run
(``pretrain.snapshot_every``), every snapshot evaluated on each task by the task's own protocol (the runner's
:func:`~pcfrl_bench.runner.evaluate_encoder`, with its feature cache), the points stored per method and task as
they come (:mod:`pcfrl_bench.reporting.curves`), and one figure with the floors and the ceiling as bands.

Stored points of the same config are not measured again; a point is measured again when its snapshot's weights
are not the ones it was measured on (a pretraining made again on another thread count).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from .errors import ConfigError, PcfrlError
from .models.detect import read_weights_file
from .progress import Stage, reporting, stage
from .reporting.curves import CurvePoint, LearningCurve, curve_panels, curve_path, read_curve, write_curve
from .resolution import Resolved, registry_result_hash
from .runner import (Encoder, RunOptions, RunPaths, build_method, ensure_pretrained, evaluate_encoder, prepare_task,
                     pretrain_dir, resolve, resolve_device, task_supervision)
from .snapshots import missing_snapshots, read_snapshots, snapshot_advice, snapshot_epochs
from .train import state_digest


def resolve_curves(methods: Sequence[str], tasks: Sequence[str], preset: str, seed: int,
                   overrides: Sequence[str] = (), every: int | None = None, device: str = "auto") -> list[Resolved]:
    """The (method, task) configs, method by method, each keeping a snapshot every ``every`` epochs (default: its
    ``pretrain.snapshot_every`` when set, else ``pretrain.checkpoint_every``). Every name is checked before any
    work (an unknown one suggests close matches), and so is that each method pretrains."""
    out = []
    for method in methods:
        for task in tasks:
            resolved = resolve(method, task, preset, seed, device, tuple(overrides))
            cfg = resolved.config
            if cfg.model.checkpoint:
                raise ConfigError("learning curves follow a pretraining; given weights (model.checkpoint) have none")
            if cfg.pretrain.epochs == 0:
                raise ConfigError(f"{method} does not pretrain (pretrain.epochs = 0 at preset {preset}): it has no "
                                  "learning curve (random-init and raw-pixels are drawn as floors)")
            cfg.pretrain.snapshot_every = every or cfg.pretrain.snapshot_every or cfg.pretrain.checkpoint_every
            out.append(resolved)
    return out


def stored_curve(curves_dir: Path, resolved: Resolved, epochs: list[int]) -> LearningCurve:
    """The stored points of ``resolved`` at ``epochs`` when they were measured with the same config (the file keeps
    only those), else a new empty curve."""
    cfg = resolved.config
    curve = LearningCurve(cfg.run.method, cfg.run.task, cfg.run.preset, cfg.run.seed, resolved.task.metric,
                          resolved.task.higher_is_better, cfg.result_hash(), resolved.is_registry,
                          list(resolved.overrides), cfg.pretrain_hash(resolved.method.implementation))
    try:
        stored = read_curve(curve_path(curves_dir, curve))
    except (OSError, ValueError):
        return curve
    if stored.config_hash != curve.config_hash:
        return curve
    kept = [p for p in stored.points if p.epoch in epochs]
    if len(kept) < len(stored.points):  # another --every before: the file holds what this curve is
        stored.points = kept
        write_curve(curves_dir, stored)
    return stored


def learning_curves(resolved_pairs: Sequence[Resolved], paths: RunPaths, curves_dir: Path,
                    options: RunOptions | None = None, console: Console | None = None) -> list[LearningCurve]:
    """The curve of every (method, task) of ``resolved_pairs`` (see :func:`resolve_curves`), each written to
    ``curves_dir`` after every new point; pretrains (or resumes, with ``options.resume``) what it needs."""
    options = options or RunOptions()
    console = console or Console(quiet=True)
    wanted = {id(r): snapshot_epochs(r.config.pretrain.epochs, r.config.pretrain.snapshot_every)
              for r in resolved_pairs}
    restarted: set[Path] = set()
    curves = []
    with reporting(console, options.progress), \
            stage("learning curves", sum(map(len, wanted.values())), "points", keep=True) as bar:
        for resolved in resolved_pairs:
            curves.append(_curve(resolved, wanted[id(resolved)], paths, curves_dir, options, restarted, console, bar))
    return curves


def _curve(resolved: Resolved, epochs: list[int], paths: RunPaths, curves_dir: Path, options: RunOptions,
           restarted: set[Path], console: Console, bar: Stage) -> LearningCurve:
    cfg = resolved.config
    run_dir = pretrain_dir(resolved, paths.cache_dir)
    curve = stored_curve(curves_dir, resolved, epochs)
    label = f"{cfg.run.method} on {cfg.run.task}"
    if set(epochs) <= set(curve.epochs()) and not (options.restart and run_dir not in restarted):
        bar.advance(len(epochs), f"{label}: stored")
        bar.line(f"{label}: {len(epochs)} points stored in {curve_path(curves_dir, curve)}")
        return curve
    device = resolve_device(cfg.run.device)
    task, _ = prepare_task(resolved, paths, options, console)
    supervision = task_supervision(resolved, task)
    pretrain_options = RunOptions(resume=options.resume, restart=options.restart and run_dir not in restarted,
                                  progress=options.progress, unreadable=options.unreadable)
    restarted.add(run_dir)
    ensure_pretrained(resolved, paths, device, pretrain_options, console, supervision)
    every = cfg.pretrain.snapshot_every
    missing = missing_snapshots(run_dir, cfg.pretrain.epochs, every)
    if missing:
        raise PcfrlError(f"no learning curve of {cfg.run.method}: {snapshot_advice(run_dir, missing, every)}")
    snapshots = read_snapshots(run_dir)
    method = build_method(resolved, supervision)
    for epoch in epochs:
        snapshot = snapshots[epoch]
        method.backbone.load_state_dict(read_weights_file(snapshot.path))
        digest = state_digest(method.encoder().state_dict())
        stored = curve.epochs().get(epoch)
        if stored is not None and stored.checkpoint_digest == digest:
            bar.advance(1, f"{label}: epoch {epoch} stored")
            continue
        encoder = Encoder(method.to(device), run_dir, True, 0.0, 1, None, digest)
        result, _, _ = evaluate_encoder(task, encoder, resolved, paths, device, options.progress, console)
        value = float(result.metrics[curve.metric])
        curve.add(CurvePoint(epoch, snapshot.step, value, dict(result.metrics), digest))
        write_curve(curves_dir, curve)
        bar.advance(1, f"{label}: epoch {epoch}")
        bar.line(f"{label}, epoch {epoch} (step {snapshot.step}): {curve.metric} {value:.2f}")
    return curve


def draw_curves(curves: Sequence[LearningCurve], reference: Path, preset: str, figure: Path) -> tuple[Path, list[str]]:
    """The figure of ``curves`` with the floors and the ceiling of the registry-config records below ``reference``;
    returns its path and a note per panel that has no band."""
    from .reporting.figures import plot_learning_curves
    from .reporting.tables import load_record_folders

    records, _ = load_record_folders(reference, registry_result_hash, missing_ok=True)
    panels = curve_panels(curves, records, preset)
    notes = [f"no floor or ceiling of {p.task} at preset {preset} in {reference}: its panel has no bands"
             for p in panels if not p.bands]
    return plot_learning_curves(panels, preset, figure), notes


__all__ = ["draw_curves", "learning_curves", "resolve_curves", "stored_curve"]

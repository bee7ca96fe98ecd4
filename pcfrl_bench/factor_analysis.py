"""Factor probes of a checkpoint (``pcfrl-bench analyze --factors``): which ground-truth factors of the synthetic
world its frozen features encode, beside the same trunk at random initialisation and raw pixels.

The images are frames of a world with the pretraining world's settings but its own people (the ``eval`` role), so
nothing probed was seen in pretraining; :func:`~pcfrl_bench.data.synthetic.world.factor_probe_data` gives the
splits, :func:`~pcfrl_bench.evaluation.factor_probes.probe_factors` the probes and scores.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from .data.synthetic.world import WorldStyle, factor_probe_data
from .errors import ConfigError
from .evaluation.factor_probes import FactorSpec, probe_factors
from .io import atomic_write_text, default_data_root, user_cache_dir
from .runner import RunOptions, RunPaths, build_method, ensure_pretrained, resolve, resolve_device
from .train import seed_everything

FACTOR_SPECS = (
    FactorSpec("expression", "class", "subject"), FactorSpec("aus", "regression", "subject"),
    FactorSpec("identity", "class", "image"), FactorSpec("yaw", "regression", "subject"),
    FactorSpec("pitch", "regression", "subject"), FactorSpec("roll", "regression", "subject"),
    FactorSpec("light", "regression", "subject"), FactorSpec("background", "regression", "subject"),
    FactorSpec("clip", "class", "frame"),
)
REFERENCES = ("random-init", "raw-pixels")


@torch.no_grad()
def encode(encoder: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Frozen features (eval mode) of ``images`` in [0, 1], as float64 numpy."""
    encoder.eval().to(device)
    out = [encoder(images[i:i + batch_size].to(device)).flatten(1).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out).double().numpy()


def factor_scores(features: dict[str, np.ndarray], labels: dict[str, torch.Tensor],
                  splits: dict[str, torch.Tensor]) -> dict[str, list[dict[str, Any]]]:
    """Scores of every factor for each named feature set."""
    lab = {k: v.numpy() for k, v in labels.items()}
    spl = {k: v.numpy() for k, v in splits.items()}
    return {name: [asdict(s) for s in probe_factors(x, lab, spl, FACTOR_SPECS)] for name, x in features.items()}


def analyze_factors(method: str, task: str, preset: str = "quick", seed: int = 0,
                    overrides: tuple[str, ...] | list[str] = (), paths: RunPaths | None = None,
                    frames: int = 8, identities: int = 100, n: int = 3000, clips: int = 100, *, device: str = "auto",
                    console: Console | None = None) -> dict[str, Any]:
    """Factor scores of ``method``'s checkpoint (cached, else pretrained now) as configured for ``task``, of the same
    trunk at random initialisation and of raw pixels, on ``identities`` unseen people of the pretraining world."""
    console = console or Console(quiet=True)
    resolved = resolve(method, task, preset, seed, device, overrides)
    cfg = resolved.config
    if not resolved.task.implementation.startswith("synth"):
        raise ConfigError(f"factor probes need a synth-* task (the synthetic world's ground truth), not {task!r}")
    paths = paths or RunPaths(Path("results/runs"), user_cache_dir(), default_data_root())
    dev = resolve_device(cfg.run.device)
    model, run_dir, _, _ = ensure_pretrained(resolved, paths, dev, RunOptions(progress=False), console)
    size = cfg.eval.image_size
    images, labels, splits = factor_probe_data(size, cfg.data.synthetic.seed, n=n, identities=identities, clips=clips,
                                               frames=frames, style=WorldStyle.of(cfg.data.synthetic))
    seed_everything(seed)
    floor = build_method(resolve("random-init", task, preset, seed, device, ()))
    features = {method: encode(model.encoder(), images, dev), "random-init": encode(floor.encoder(), images, dev),
                "raw-pixels": images.flatten(1).double().numpy()}
    return {"kind": "factor-probes", "method": method, "task": task, "preset": preset, "seed": seed,
            "overrides": list(overrides), "checkpoint": str(run_dir), "image_size": size, "identities": identities,
            "faces": n, "clips": clips, "frames_per_clip": frames, "n_images": int(len(images)),
            "scores": factor_scores(features, labels, splits)}


def factor_table(report: dict[str, Any]) -> list[list[str]]:
    """Rows (factor, score per feature set) for printing: decodability / R^2 to two decimals."""
    names = list(report["scores"])
    by_factor: dict[str, dict[str, float]] = {}
    for name in names:
        for s in report["scores"][name]:
            by_factor.setdefault(s["name"], {})[name] = s["score"]
    return [["factor", *names]] + [[f, *(f"{v[n]:.2f}" for n in names)] for f, v in by_factor.items()]


def write_factor_report(report: dict[str, Any], out_dir: Path, stem: str) -> Path:
    """``<stem>-factors.json`` and ``<stem>-factors.png`` (grouped bars per factor); returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-factors.json"
    atomic_write_text(path, json.dumps(report, indent=1) + "\n")
    from .reporting.figures import factor_figure

    factor_figure(report, out_dir / f"{stem}-factors.png")
    return path


__all__ = ["FACTOR_SPECS", "analyze_factors", "encode", "factor_scores", "factor_table", "write_factor_report"]

"""Analysis of a pretrained checkpoint on a synthetic batch with ground truth (PCFRL Fig. 5, 7a-b, 8, 9, 10).

:func:`analyze_checkpoint` loads (or pretrains) a method through the runner, renders ``n`` frames of the
synthetic pretraining world (one frame of each of ``n`` distinct clips, like a training batch; when the world
has fewer clips, distinct (clip, frame) pairs), makes the method's **training views** of them (PCL / PCFRL:
two distance-crop face views and two appearance-augmented pose views per image; SimCLR / MoCo: two SimCLR
views), embeds them with the branch heads in training mode (batch statistics, as in training) and scores
every pair with cosine (Eq. 4) and PA (Eq. 3, the branch's alpha and NS reduction). For each scoring (npa,
cosine) and rule (threshold T, top1, top2, top5) it calibrates the batch (Algorithm 1 / Table 7) and measures
the calibrated pairs against the ground truth. The frames come from the whole pretraining world (not only the
first ``data.max_samples`` clips); the official pose-flip negatives (``pose_flip_negatives``) are not added.
T of the threshold rule: the branch's own T for the scoring it is configured with, else 1.0 for NPA
(Algorithm 1) and 0.9 for cosine (the ``pcl-calib-cos`` variant).

Ground truth, precision and recall are those of the training logs (``methods/calibrated.py``:
:func:`~pcfrl_bench.methods.calibrated.pair_truth`, :func:`~pcfrl_bench.methods.calibrated.calibration_counts`,
:func:`~pcfrl_bench.methods.calibrated.calibration_quality`): face (and SimCLR's ``view``) pairs are right
when they share identity or emotion, pose pairs when yaw and pitch are both within 15 degrees; recall counts
anchors with a correct partner among the anchors with a true candidate. With one partner per anchor
(threshold, top1) recall is correct pairs / findable anchors; for top-K it stays <= 1.

The F_s, F_f and F_p features for t-SNE (Fig. 10) are computed on the **plain** images (no augmentation,
eval mode) of the first ``<= 300`` images and stored after PCA to at most 50 dimensions (the usual t-SNE
pre-reduction), so each file stays well under 1 MB.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import Tensor

from .calibration import calibrate, candidate_mask, cosine_matrix, pair_alignment
from .data.synthetic import SyntheticWorld, WorldStyle
from .errors import ConfigError
from .io import atomic_write_text, default_data_root, user_cache_dir
from .methods.calibrated import CalibrationParams, calibration_counts, calibration_quality, truth_description
from .results import ANALYSIS_KIND
from .runner import RunOptions, RunPaths, ensure_pretrained, resolve, resolve_device
from .train import seed_everything

SCORINGS = ("npa", "cosine")
RULES = {"threshold": ("threshold", 1), "top1": ("top1", 1), "top2": ("topk", 2), "top5": ("topk", 5)}
DEFAULT_T = {"npa": 1.0, "cosine": 0.9}  # Algorithm 1's T=1 on NPA; 0.9 on the cosine scale (pcl-calib-cos)
MAX_FEATURES = 300  # t-SNE points per feature type (Fig. 10)
PCA_DIMS = 50
SCORE_SAMPLES = 20_000  # candidate-pair scores kept per (branch, scoring)
LABEL_KEYS = ("identity", "emotion", "yaw", "pitch", "roll")
MAX_FILE_BYTES = 1_000_000


def default_analysis_dir() -> Path:
    """``results/runs/analysis`` under the working directory (the committed ones are in results/reference)."""
    return Path("results/runs/analysis")


def analysis_stem(method: str, task: str, preset: str, seed: int) -> str:
    return f"{method}-{task}-{preset}-seed{seed}"


# ---------------------------------------------------------------------------------------------- quality


def mask_quality(mask: Tensor, truth: Tensor, groups: Tensor) -> dict[str, Any]:
    """Counts, calibrated pairs per view and precision / recall of one calibrated (M, M) mask."""
    counts = {k: int(v) for k, v in calibration_counts(mask, truth, groups).items()}
    return {**counts, "rate": counts["pairs"] / mask.shape[0], **calibration_quality(counts)}


def quality_table(scores: dict[str, Tensor], truth: Tensor, groups: Tensor,
                  thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (scoring, rule): the rule's parameter and :func:`calibration_quality`."""
    rows = []
    for scoring, s in scores.items():
        for name, (rule, k) in RULES.items():
            t = thresholds[scoring]
            mask = calibrate(s, groups, rule, t, k)
            rows.append({"score": scoring, "rule": name, "threshold": t if rule == "threshold" else None,
                         "k": k, **mask_quality(mask, truth, groups)})
    return rows


def max_scores(scores: Tensor, groups: Tensor, truth: Tensor) -> tuple[Tensor, Tensor]:
    """Each anchor's maximum score over its candidates and whether that best candidate is a true partner."""
    masked = scores.masked_fill(~candidate_mask(groups), float("-inf"))
    values, idx = masked.max(1)
    return values, truth.gather(1, idx[:, None])[:, 0]


def candidate_scores(scores: Tensor, groups: Tensor, truth: Tensor, k: int, gen: torch.Generator) -> tuple[
        Tensor, Tensor]:
    """Up to ``k`` random candidate-pair scores (i < j) and their truth."""
    m = scores.shape[0]
    upper = torch.triu(torch.ones(m, m, dtype=torch.bool), 1) & candidate_mask(groups)
    vals, tru = scores[upper], truth[upper]
    if vals.numel() > k:
        keep = torch.randperm(vals.numel(), generator=gen)[:k]
        vals, tru = vals[keep], tru[keep]
    return vals, tru


def pca(x: Tensor, dims: int = PCA_DIMS) -> Tensor:
    """Rows projected on their top ``dims`` principal components (centred)."""
    x = x.double().flatten(1)
    x = x - x.mean(0, keepdim=True)
    u, s, _ = torch.linalg.svd(x, full_matrices=False)
    d = min(dims, s.numel())
    return (u[:, :d] * s[:d]).float()


# ---------------------------------------------------------------------------------------------- the batch


def synthetic_batch(world: SyntheticWorld, n: int, image_size: int, seed: int) -> tuple[Tensor, dict[str, Tensor]]:
    """``n`` frames of distinct clips (like a training batch), or distinct (clip, frame) pairs if clips run out."""
    g = torch.Generator().manual_seed(10_007 * seed + 17)
    n_clips, fpc = world.n_clips, world.frames_per_clip
    if n <= n_clips:
        clips = torch.randperm(n_clips, generator=g)[:n]
        frames = torch.randint(fpc, (n,), generator=g)
    else:
        cells = torch.randperm(n_clips * fpc, generator=g)[: min(n, n_clips * fpc)]
        clips, frames = cells // fpc, cells % fpc
    images, f = world.render(clips, frames, image_size)
    labels = {k: f[k].detach().clone() for k in LABEL_KEYS}
    labels["clip"] = clips
    return images, labels


def branch_thresholds(cp: CalibrationParams) -> dict[str, float]:
    """T per scoring: the branch's own T for the scoring it uses, the default T for the other one."""
    return {s: (cp.threshold if cp.score == s else DEFAULT_T[s]) for s in SCORINGS}


def analyze_model(model: torch.nn.Module, images: Tensor, labels: dict[str, Tensor], seed: int,
                  device: torch.device) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays for the npz and the JSON summary of one model on one labelled batch."""
    n = images.shape[0]
    gen = torch.Generator().manual_seed(seed)
    seed_everything(seed)  # the views' random draws
    x = images.to(device)
    arrays: dict[str, np.ndarray] = {}
    summary: dict[str, Any] = {"branches": {}, "table": []}
    with torch.no_grad():
        model.train()  # projection heads use batch statistics, as in training
        branches = model.branches({"image": x, **labels})
        if not branches:
            raise ConfigError(f"analysis needs a method with contrastive branches, not {type(model).__name__}")
        for b in branches:
            if b.truth is None:
                raise ConfigError("analysis needs ground-truth labels (identity, emotion, yaw, pitch) in the batch")
            z, truth, groups = b.z.detach().float().cpu(), b.truth.cpu(), b.groups.cpu()
            scores = {"npa": pair_alignment(z, b.params.alpha, ns_reduction=b.params.ns_reduction),
                      "cosine": cosine_matrix(z)}
            thresholds = branch_thresholds(b.params)
            rows = quality_table(scores, truth, groups, thresholds)
            summary["table"] += [{"branch": b.name, **r} for r in rows]
            info: dict[str, Any] = {"alpha": b.params.alpha, "ns_reduction": b.params.ns_reduction,
                                    "thresholds": thresholds, "calibration_enabled": b.params.enabled}
            for scoring, s in scores.items():
                mx, mx_true = max_scores(s, groups, truth)
                vals, tru = candidate_scores(s, groups, truth, SCORE_SAMPLES, gen)
                key = f"{b.name}_{scoring}"
                arrays[f"{key}_scores"] = vals.numpy().astype(np.float32)
                arrays[f"{key}_scores_true"] = tru.numpy()
                arrays[f"{key}_max"] = mx.numpy().astype(np.float32)
                arrays[f"{key}_max_true"] = mx_true.numpy()
                q = torch.tensor([0.05, 0.25, 0.5, 0.75, 0.95], dtype=torch.float64)
                info[scoring] = {"candidate_quantiles_5_25_50_75_95": vals.double().quantile(q).tolist(),
                                 "max_quantiles_5_25_50_75_95": mx.double().quantile(q).tolist(),
                                 "max_mean": float(mx.mean()),
                                 "share_best_candidate_true": float(mx_true.float().mean())}
            summary["branches"][b.name] = info
        model.eval()
        k = min(n, MAX_FEATURES)
        feats = {name: f.float().cpu() for name, f in model.named_features(x[:k]).items()}
    for name, f in feats.items():
        arrays[f"features_{name}"] = pca(f).numpy().astype(np.float16)
    if "face" in feats and "pose" in feats:  # Fig. 10d: pose and face features in one space
        h = k // 2
        arrays["features_joint"] = pca(torch.cat([feats["pose"][:h], feats["face"][:h]])).numpy().astype(np.float16)
        arrays["features_joint_kind"] = np.array([0] * h + [1] * h, dtype=np.int8)  # 0 = pose, 1 = face
    for key in LABEL_KEYS:
        v = labels[key][:k].numpy()
        arrays[f"labels_{key}"] = v.astype(np.float32 if v.dtype.kind == "f" else np.int64)
    views = {b.name: int(b.z.shape[0]) for b in branches}
    summary.update({"n_images": n, "n_views": max(views.values()), "views": views, "n_features": k,
                    "feature_dims_before_pca": {name: int(f.shape[1]) for name, f in feats.items()}})
    return arrays, summary


def write_analysis(arrays: dict[str, np.ndarray], summary: dict[str, Any], out_dir: Path, stem: str,
                   summary_only: bool = False) -> Path:
    """``<stem>.npz`` (compressed; score samples halved until < 1 MB) and ``<stem>.json``; returns the npz, or
    with ``summary_only`` writes only the JSON (the numbers, without the arrays figures draw) and returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if summary_only:
        path = out_dir / f"{stem}.json"
        atomic_write_text(path, json.dumps(_finite({**summary, "npz": None, "arrays": {}}), indent=1) + "\n")
        return path
    npz = out_dir / f"{stem}.npz"
    tmp = out_dir / f".{stem}.tmp.npz"
    while True:
        np.savez_compressed(tmp, **arrays)
        sample_keys = [k for k in arrays if k.endswith("_scores") or k.endswith("_scores_true")]
        if tmp.stat().st_size < MAX_FILE_BYTES or not sample_keys or len(arrays[sample_keys[0]]) < 100:
            break
        arrays = {k: (v[: len(v) // 2] if k in sample_keys else v) for k, v in arrays.items()}
    tmp.replace(npz)
    summary = {**summary, "npz": npz.name, "arrays": {k: list(v.shape) for k, v in arrays.items()}}
    atomic_write_text(out_dir / f"{stem}.json", json.dumps(_finite(summary), indent=1) + "\n")
    return npz


def _in_cache(run_dir: Path, cache_dir: Path) -> str:
    """The checkpoint folder as ``<cache>/...`` (portable in committed files), else its absolute path."""
    try:
        return "<cache>/" + Path(run_dir).resolve().relative_to(Path(cache_dir).resolve()).as_posix()
    except ValueError:
        return str(run_dir)


def _finite(obj: Any) -> Any:
    """NaN -> None, so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def analyze_checkpoint(method: str, task: str, preset: str = "quick", seed: int = 0,
                       overrides: tuple[str, ...] | list[str] = (), paths: RunPaths | None = None, n: int = 256,
                       *, out_dir: Path | None = None, device: str = "auto", console: Console | None = None,
                       summary_only: bool = False) -> Path:
    """Analyse the (cached, else pretrained now) checkpoint of ``method`` as configured for ``task``.

    Writes ``<out_dir>/<method>-<task>-<preset>-seed<seed>.{npz,json}`` (default out_dir:
    ``results/runs/analysis``) and returns the npz path. The task only selects the config (its
    pretraining source must be ``synth``, whose frames carry identity, emotion and pose).
    """
    console = console or Console(quiet=True)
    resolved = resolve(method, task, preset, seed, device, overrides)
    cfg = resolved.config
    if cfg.data.source != "synth":
        raise ConfigError(f"analysis needs the synthetic pretraining source (data.source=synth); {method} on {task} "
                          f"pretrains on {cfg.data.source!r}. Use a synth-* task.")
    if n < 2:
        raise ConfigError(f"analysis batch size n must be >= 2, got {n}")
    paths = paths or RunPaths(Path("results/runs"), user_cache_dir(), default_data_root())
    dev = resolve_device(cfg.run.device)
    model, run_dir, reused, _ = ensure_pretrained(resolved, paths, dev, RunOptions(progress=False), console)
    w = cfg.data.synthetic
    world = SyntheticWorld(w.seed, w.identities, w.clips_per_identity, w.frames_per_clip, role="pretrain",
                           style=WorldStyle.of(w))
    images, labels = synthetic_batch(world, n, cfg.data.image_size, seed)
    arrays, summary = analyze_model(model, images, labels, seed, dev)
    impl = resolved.method.implementation
    summary = {"kind": ANALYSIS_KIND, "method": method, "task": task, "preset": preset, "seed": seed, "implementation": impl,
               "overrides": list(overrides), "pretrain_hash": cfg.pretrain_hash(impl),
               "checkpoint": _in_cache(run_dir, paths.cache_dir),
               "epochs": cfg.pretrain.epochs, "image_size": cfg.data.image_size, "truth": truth_description(),
               **summary}
    return write_analysis(arrays, summary, Path(out_dir) if out_dir else default_analysis_dir(),
                          analysis_stem(method, task, preset, seed), summary_only)


__all__ = [
    "analyze_checkpoint", "analyze_model", "mask_quality", "quality_table",
    "max_scores", "synthetic_batch", "write_analysis", "default_analysis_dir", "analysis_stem", "RULES", "SCORINGS",
]

"""Protocol families: each class implements ``evaluate`` and asks its subclass only for data.

A concrete task (real dataset or synthetic world) subclasses one family and gives ``splits(image_size)``
(plus, for verification, ``pair_lists()``). The protocols follow docs/design.md "Linear evaluation" (PCFRL
Sec. 4.2.2); metrics are in percent for accuracy and F1, in degrees for head pose.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import DataConfig, EvalConfig
from ..errors import ConfigError
from ..evaluation.features import FeatureSet
from ..evaluation.probes import ProbeResult, train_probe
from ..data.readers.disfa import au_subject_folds
from ..data.readers.headpose import head_pose_filter
from ..evaluation.protocols import (ANGLE_NAMES, cosine_pair_scores, f1_per_label, fold_centred_pair_scores,
                                    mae_per_angle, mean_average_precision, median_angles_mae,
                                    verification_accuracy_10fold)
from .base import ClassificationTask, EvalResult, Supervision, Task

__all__ = [
    "AUDetectionTask",
    "ClassificationTask",
    "HeadPoseTask",
    "VerificationTask",
    "au_f1_metric",
    "average_fold_results",
    "head_pose_metric",
    "verification_metrics",
]


# ------------------------------------------------------------------------------------------------ verification


def verification_metrics(features: Tensor | np.ndarray, pairs: np.ndarray, same: np.ndarray,
                         fold: np.ndarray, center: str = "none") -> dict[str, float]:
    """Cosine of frozen features on pairs, 10-fold protocol (datasets.md §3): accuracy mean/std/sem in percent
    and each fold's accuracy. ``center="train_folds"``: features minus the threshold folds' mean feature."""
    features = np.asarray(features, dtype=np.float64)
    if center not in ("none", "train_folds"):
        raise ConfigError(f"unknown verification centring {center!r}; choose none or train_folds")
    scores = (fold_centred_pair_scores(features, pairs, fold) if center == "train_folds"
              else cosine_pair_scores(features, pairs))
    r = verification_accuracy_10fold(scores, same, fold)
    out = {"accuracy": 100.0 * r["accuracy_mean"], "accuracy_std": 100.0 * r["accuracy_std"],
           "accuracy_sem": 100.0 * r["accuracy_sem"]}
    out.update({f"fold{k + 1}_accuracy": 100.0 * a for k, a in enumerate(r["fold_accuracies"])})
    return out


class VerificationTask(Task):
    """Face verification without training: cosine similarity of frozen features of the two images of a pair,
    threshold chosen on 9 folds and applied to the 10th (docs/design.md, FR). ``splits`` must return the
    ``verification_split`` dataset of *unique* images (each extracted once); ``pair_lists`` indexes into it."""

    protocol = "verification"
    verification_split: ClassVar[str] = "test"

    def pair_lists(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pairs (P,2) sample positions, same (P,) bool, fold (P,) int)."""
        raise NotImplementedError

    def evaluate(self, features: dict[str, FeatureSet], cfg: EvalConfig, seed: int, device: torch.device) -> EvalResult:
        fs = features[self.verification_split]
        x = fs.features
        if "index" in fs.targets:  # rows back to sample positions (the dataset may be reordered or scanned)
            positions = fs.targets["index"].long()
            table = torch.full((int(positions.max()) + 1, x.shape[1]), float("nan"))
            table[positions] = x.float()
            x = table
        pairs, same, fold = self.pair_lists()
        pairs = np.asarray(pairs, dtype=np.int64)
        if len(pairs) and (pairs.max() >= len(x) or torch.isnan(x[torch.from_numpy(pairs.reshape(-1))]).any()):
            raise ConfigError(f"{self.name}: a pair refers to an image without features")
        metrics = verification_metrics(x, pairs, np.asarray(same, dtype=bool), np.asarray(fold),
                                       cfg.verification_center)
        counts = {"images": len(fs.features), "pairs": len(pairs), "folds": int(len(np.unique(fold)))}
        # floor: features that say nothing (every score equal), through the same 10-fold protocol
        constant = verification_metrics(np.ones((len(x), 1)), pairs, np.asarray(same, dtype=bool), np.asarray(fold))
        # no probe is trained: the "best over epochs" is the single evaluation itself
        return EvalResult(metrics, dict(metrics), None, counts, {"accuracy": constant["accuracy"]})


# ------------------------------------------------------------------------------------------------ AU detection


def au_f1_metric(names: Sequence[str]) -> Callable[[Tensor, Tensor], dict[str, float]]:
    """Metric of logits (N,L) against 0/1 targets: sigmoid > 0.5 is 'on' (PCFRL Table 3: F1 per AU); F1 in percent
    per AU (``f1_<name>``) and their mean (``f1``, the headline), plus the threshold-free mean average precision
    in percent (``map``, over the AUs with a positive in the test fold)."""
    def metric(logits: Tensor, targets: Tensor) -> dict[str, float]:
        on = targets.numpy() > 0.5
        f1 = 100.0 * f1_per_label((logits > 0).numpy(), on)  # sigmoid(z) > 0.5 <=> z > 0
        out = {"f1": float(f1.mean()), "map": 100.0 * mean_average_precision(logits.numpy(), on)[0]}
        out.update({f"f1_{n}": float(v) for n, v in zip(names, f1)})
        return out
    return metric


def au_trivial(test_targets: Tensor) -> dict[str, float]:
    """Floor of the AU metrics on one test fold: every AU predicted 'on' (F1), a constant score (AP = prevalence)."""
    on = test_targets.numpy() > 0.5
    return {"f1": float(100.0 * f1_per_label(np.ones_like(on), on).mean()),
            "map": 100.0 * mean_average_precision(np.zeros(on.shape), on)[0]}


def au_pos_weight(train_targets: Tensor, mode: str) -> Tensor | None:
    """BCE ``pos_weight`` per AU: negatives/positives in the training fold ("balanced"), or None."""
    if mode != "balanced":
        return None
    pos = train_targets.float().sum(0)
    return (len(train_targets) - pos) / pos.clamp_min(1.0)


def average_fold_results(results: Sequence[ProbeResult], primary: str,
                         higher_is_better: bool) -> tuple[dict[str, float], dict[str, float], int]:
    """(final-epoch metrics averaged over folds, fold-averaged metrics at the epoch whose fold-averaged primary
    metric is best, that epoch (1-based))."""
    keys = list(results[0].final)
    final = {k: float(np.mean([r.final[k] for r in results])) for k in keys}
    epochs = min(len(r.history_metrics) for r in results)
    per_epoch = [{k: float(np.mean([r.history_metrics[e][k] for r in results])) for k in keys} for e in range(epochs)]
    values = np.asarray([m[primary] for m in per_epoch])
    e = int(np.argmax(values) if higher_is_better else np.argmin(values))
    return final, per_epoch[e], e + 1


class AUDetectionTask(Task):
    """AU detection (docs/design.md, AU): BN+Linear probe with BCE, 'on' when sigmoid > 0.5, F1 per AU and mean;
    subject-exclusive folds (datasets.md §5), metrics averaged over folds. ``splits`` returns the
    ``au_split`` dataset with targets "aus" (N,L) 0/1 and "subject" (N,)."""

    protocol = "au_detection"
    au_split: ClassVar[str] = "all"
    aus: ClassVar[tuple] = (1, 2, 4, 6, 9, 12, 25, 26)  # PCFRL Sec. 4.2.1 (DISFA)
    n_folds: ClassVar[int] = 3

    def au_names(self) -> list[str]:
        return [a if isinstance(a, str) else f"AU{a}" for a in self.aus]

    def folds(self, subjects: np.ndarray) -> np.ndarray:
        """Test fold (0..n_folds-1) of each sample; fold k trains on every other fold."""
        return au_subject_folds(subjects, getattr(self.params, "n_folds", self.n_folds))

    def evaluate(self, features: dict[str, FeatureSet], cfg: EvalConfig, seed: int, device: torch.device) -> EvalResult:
        fs = features[self.au_split]
        x, y = fs.features, fs.targets["aus"].float()
        fold = torch.from_numpy(self.folds(fs.targets["subject"].numpy()))
        names = self.au_names()
        if y.shape[1] != len(names):
            raise ConfigError(f"{self.name}: {y.shape[1]} AU columns but {len(names)} AU names")
        metric = au_f1_metric(names)
        results, used, trivial = [], [], []
        counts = {"samples": len(x), "subjects": int(len(torch.unique(fs.targets["subject"])))}
        for k in torch.unique(fold).tolist():
            train, test = torch.nonzero(fold != k).flatten(), torch.nonzero(fold == k).flatten()
            if len(train) < 2 or len(test) == 0:
                continue
            train, test = train[: cfg.max_train or None], test[: cfg.max_test or None]
            weight = au_pos_weight(y[train], cfg.probe.pos_weight)
            weight = None if weight is None else weight.to(device)
            loss = functools.partial(F.binary_cross_entropy_with_logits, pos_weight=weight)
            results.append(train_probe(x[train], y[train], x[test], y[test], len(names), cfg.probe,
                                       loss, metric, "f1", True, seed, device))
            trivial.append(au_trivial(y[test]))
            used.append(k)
            counts[f"fold{k + 1}_train"], counts[f"fold{k + 1}_test"] = len(train), len(test)
        if not results:
            raise ConfigError(f"{self.name}: no fold has both training and test subjects")
        counts["folds"] = len(results)
        final, best, best_epoch = average_fold_results(results, "f1", True)
        final.update({f"fold{k + 1}_f1": r.final["f1"] for k, r in zip(used, results)})
        floor = {key: float(np.mean([t[key] for t in trivial])) for key in trivial[0]}
        return EvalResult(final, best, best_epoch, counts, floor)


# ------------------------------------------------------------------------------------------------ head pose


def head_pose_metric(outputs: Tensor, targets: Tensor) -> dict[str, float]:
    """MAE in degrees per angle (``mae_yaw``, ``mae_pitch``, ``mae_roll``) and their mean (``mae``)."""
    m = mae_per_angle(outputs.numpy(), targets.numpy())
    out = {"mae": m["mean"]}
    out.update({f"mae_{a}": m[a] for a in ANGLE_NAMES})
    return out


class HeadPoseTask(Task):
    """Head pose (docs/design.md, HPE): BN+Linear->3 regressing (yaw, pitch, roll) degrees with L1, MAE per angle
    and mean; samples with any |angle| > ``pose_limit`` dropped from both sets. ``splits`` returns "train" and
    "test" with target "angles" (N,3)."""

    protocol = "head_pose"
    pose_limit: ClassVar[float] = 99.0

    def angle_limit(self) -> float:
        return float(getattr(self.params, "limit", self.pose_limit))

    def evaluate(self, features: dict[str, FeatureSet], cfg: EvalConfig, seed: int, device: torch.device) -> EvalResult:
        limit = self.angle_limit()
        sets, counts = {}, {}
        for split in ("train", "test"):
            fs = features[split]
            keep = torch.from_numpy(head_pose_filter(fs.targets["angles"].numpy(), limit))  # Hopenet ±99° filter
            rows = torch.nonzero(keep).flatten()[: (cfg.max_train if split == "train" else cfg.max_test) or None]
            sets[split] = (fs.features[rows], fs.targets["angles"][rows].float())
            counts[split], counts[f"{split}_filtered"] = len(rows), int((~keep).sum())
        (tx, ty), (vx, vy) = sets["train"], sets["test"]
        result = train_probe(tx, ty, vx, vy, 3, cfg.probe, F.l1_loss, head_pose_metric, "mae", False, seed, device)
        floor = median_angles_mae(ty.numpy(), vy.numpy())
        return EvalResult.from_probe(result, counts, {"mae": floor["mean"], **{f"mae_{a}": floor[a] for a in ANGLE_NAMES}})

    def supervision(self, data: DataConfig) -> Supervision:
        """The probe's training split and angles (L1 on yaw, pitch, roll in degrees, like the probe)."""
        return Supervision(self.splits(data.image_size)["train"], "angles", 3, "l1")

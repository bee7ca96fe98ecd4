"""The calibration seam shared by SimCLR, PCL and PCFRL (PCFRL Sec. 3.3, Algorithm 1, Eq. 6-7).

A method describes each contrastive branch of a batch as a :class:`Branch` (``Method.branches``): its
embeddings, the source image of every view, its :class:`CalibrationParams` and, when the batch carries
ground truth, which calibrated pairs would be correct. :func:`branch_loss` turns a branch into Eq. 6 (+
Algorithm 1 and Eq. 7); :func:`calibration_counts` / :func:`calibration_quality` measure the calibrated pairs.
The training logs and ``pcfrl-bench analyze`` both use these functions, so they report the same precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import Tensor

from ..calibration import calibrate, calibration_scores, candidate_mask
from ..losses import calibrated_loss, contrastive_loss, draw_negative_mix, mixed_negative_cosines
from ..precision import autocast_off, to_fp32
from ..schema.methods import CalibrationParams, PCLParams

FACE_TRUTH_KEYS = ("identity", "emotion", "label")  # a face (or view) pair is right if it shares any of these
POSE_TRUTH_KEYS = ("yaw", "pitch")  # a pose pair is right if every one of these is within the tolerance
POSE_TOLERANCE_DEG = 15.0
MIRRORED_KEYS = ("yaw", "roll")  # a horizontal flip negates these angles
COUNT_KEYS = ("pairs", "correct", "hits", "findable", "true_pairs")


@dataclass
class Branch:
    """One contrastive branch of a batch: M views, their embeddings and how to calibrate them."""

    name: str  # "pose", "face" (PCL / PCFRL) or "view" (SimCLR, MoCo)
    z: Tensor  # (M, d) embeddings (not normalised)
    groups: Tensor  # (M,) source image of each view: views of one image are positives
    params: CalibrationParams
    truth: Tensor | None = None  # (M, M) bool: a calibrated (i, j) pair is correct; None without labels
    allowed: Tensor | None = None  # (M, M) bool: the only columns allowed as negatives (None: all others)


@dataclass
class BranchLoss:
    """The losses and calibration outcome of one contrastive branch over M views."""

    contrastive: Tensor
    calibrated: Tensor
    mask: Tensor | None  # (M, M) bool calibrated pairs, or None when calibration is off


def branch_loss(b: Branch, tau: float, denominator: str = PCLParams.denominator,
                neg_mixing_alpha: float = PCLParams.neg_mixing_alpha) -> BranchLoss:
    """Contrastive loss (Eq. 6) of one branch, with Algorithm 1 calibration and Eq. 7 when enabled.

    ``neg_mixing_alpha > 0``: the official code's Beta(a, a) negative mixing (one fresh draw per call).
    """
    b = replace(b, z=to_fp32(b.z))  # scores, NS sums and losses in float32 under mixed precision
    with autocast_off(b.z):
        cp = b.params
        mask = scores = None
        if cp.enabled:
            scores = calibration_scores(b.z, cp.score, cp.alpha, cp.ns_reduction)  # Eq. 3 (or cosine), no grad
            mask = calibrate(scores, b.groups, cp.rule, cp.threshold, cp.k)  # Algorithm 1
        cosines = None
        if neg_mixing_alpha > 0:
            mix = draw_negative_mix(b.groups, neg_mixing_alpha, b.allowed)
            cosines = mixed_negative_cosines(b.z, b.groups, mix, b.allowed)
        l_con = contrastive_loss(b.z, b.groups, mask, tau, denominator, allowed=b.allowed, cosines=cosines)  # Eq. 6
        if mask is not None and cp.loss:
            l_cal = calibrated_loss(b.z, b.groups, mask, scores, cp.beta, tau, cp.similarity, cp.weight_in,
                                    cp.detach_weight, allowed=b.allowed)  # Eq. 7
        else:
            l_cal = torch.zeros((), device=b.z.device, dtype=b.z.dtype)
        return BranchLoss(l_con, l_cal, mask)


# ---- ground truth -------------------------------------------------------------------------------------


def view_labels(batch: dict[str, Tensor], image: Tensor, mirrored: Tensor | None = None) -> dict[str, Tensor]:
    """The labels of every view: view v shows image ``image[v]``, horizontally flipped where ``mirrored``."""
    out = {}
    for key, values in batch.items():
        if key == "image" or not torch.is_tensor(values) or values.dim() != 1:
            continue
        v = values.to(image.device)[image]
        if mirrored is not None and key in MIRRORED_KEYS:
            v = torch.where(mirrored, -v, v)
        out[key] = v
    return out


def pair_truth(kind: Literal["face", "pose"], labels: dict[str, Tensor]) -> Tensor | None:
    """(M, M) bool ground truth of a correct calibrated pair from per-view labels; None without them.

    ``face`` (and SimCLR's views): same identity OR same emotion OR same class label (whichever are known);
    ``pose``: |yaw_i - yaw_j| <= 15 AND |pitch_i - pitch_j| <= 15 degrees (whichever are known).
    """
    keys = FACE_TRUTH_KEYS if kind == "face" else POSE_TRUTH_KEYS
    out = None
    for key in keys:
        if key not in labels:
            continue
        t = labels[key]
        if kind == "face":
            same = t[:, None] == t[None, :]
            out = same if out is None else out | same
        else:
            t = t.float()
            close = (t[:, None] - t[None, :]).abs() <= POSE_TOLERANCE_DEG
            out = close if out is None else out & close
    return out


def truth_description() -> dict[str, str]:
    """The ground-truth definitions in words (stored with every analysis)."""
    pose = " and ".join(f"|{k} diff| <= {POSE_TOLERANCE_DEG:g}" for k in POSE_TRUTH_KEYS) + " degrees"
    face = "same " + " OR same ".join(FACE_TRUTH_KEYS)
    return {
        "face": face, "view": face, "pose": pose + " (a flipped view has -yaw, -roll)",
        "candidates": "views of the other images (Group B of Algorithm 1)",
        "precision": "correct calibrated pairs / calibrated pairs",
        "recall": "anchors with >= 1 correct calibrated partner / anchors with >= 1 true candidate",
        "pair_recall": "correct calibrated pairs / true candidate pairs",
    }


# ---- precision and recall -----------------------------------------------------------------------------


def calibration_counts(mask: Tensor, truth: Tensor, groups: Tensor) -> dict[str, Tensor]:
    """Counts of one calibrated (M, M) mask against the (M, M) truth; candidates are the other images' views.

    ``pairs`` calibrated pairs, ``correct`` of them true, ``hits`` anchors with a correct partner,
    ``findable`` anchors with a true candidate, ``true_pairs`` true candidate pairs.
    """
    cand = candidate_mask(groups.to(mask.device))
    mask = mask & cand
    good = mask & truth
    true_cand = truth & cand
    values = (mask.sum(), good.sum(), good.any(1).sum(), true_cand.any(1).sum(), true_cand.sum())
    return {k: v.double() for k, v in zip(COUNT_KEYS, values)}


def calibration_quality(counts: dict[str, float]) -> dict[str, float]:
    """precision = correct / pairs, recall = hits / findable, pair_recall = correct / true_pairs (NaN if 0/0)."""

    def ratio(a: str, b: str) -> float:
        den = float(counts.get(b, 0.0))
        return float(counts[a]) / den if den else math.nan

    return {"precision": ratio("correct", "pairs"), "recall": ratio("hits", "findable"),
            "pair_recall": ratio("correct", "true_pairs")}


def calibration_logs(prefix: str, mask: Tensor | None, b: Branch) -> dict[str, Tensor]:
    """Per-step ``<prefix>_cal_pairs``, ``_cal_rate`` (pairs per view) and, with ground truth, the counts."""
    if mask is None:
        return {}
    logs = {f"{prefix}_cal_pairs": mask.sum().double(), f"{prefix}_cal_rate": mask.sum().double() / mask.shape[0]}
    if b.truth is not None:
        counts = calibration_counts(mask, b.truth, b.groups)
        logs.update({f"{prefix}_cal_{k}": v for k, v in counts.items() if k != "pairs"})
    return logs


def precision_from_means(means: dict[str, float], prefixes: tuple[str, ...]) -> dict[str, float]:
    """Epoch precision, recall and pair recall of each branch from the summed counts (:func:`calibration_quality`).

    A value is skipped when its counts are missing (no ground truth) or its denominator is zero.
    """
    out = {}
    for prefix in prefixes:
        counts = {k: means[f"{prefix}_cal_{k}"] for k in COUNT_KEYS if f"{prefix}_cal_{k}" in means}
        if "correct" not in counts:
            continue
        for name, value in calibration_quality(counts).items():
            if math.isfinite(value):
                out[f"{prefix}_cal_{name}"] = value
    return out

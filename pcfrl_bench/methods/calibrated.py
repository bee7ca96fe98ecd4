"""Shared pieces of the calibrated contrastive methods: NPA calibration as a plug-in (Sec. 3.3, Algorithm 1),
calibrated losses (Eq. 7), negative mixing (official PCL code) and the calibration logs.

Used by SimCLR (``simclr-calib-*``), PCL and PCFRL; pose and face branches each own a
:class:`CalibrationParams` (Algorithm 1 runs twice, with its own T and beta).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..calibration import calibrate, calibration_scores, candidate_mask, cosine_matrix
from ..losses import calibrated_loss, contrastive_loss
from ..precision import fp32

FACE_TRUTH_KEYS = ("identity", "emotion")  # a calibrated face pair is right if it shares one of these
POSE_TRUTH_KEY = "yaw"
POSE_TOLERANCE_DEG = 15.0  # a calibrated pose pair is right if |yaw_i - yaw_j| <= 15 degrees


@dataclass
class CalibrationParams:
    """False-negative pair calibration of one feature branch (``--set method.<branch>.<field>=...``)."""

    enabled: bool = False
    score: Literal["npa", "cosine"] = "npa"  # Table 5: NPA (Eq. 3) or plain cosine
    rule: Literal["threshold", "top1", "topk"] = "threshold"  # Table 7: Algorithm 1, NN, top-K
    threshold: float = 1.0  # T of Algorithm 1
    k: int = 1  # K of the top-K rule
    alpha: float = 10.0  # alpha of Eq. 3 (weight of NS)
    ns_reduction: Literal["sum", "mean"] = "sum"  # Eq. 5 as printed (sum) or averaged over the 2N-2 terms
    loss: bool = True  # Eq. 7 calibrated loss; false: calibrated pairs only leave the negatives
    beta: float = 1.0  # beta of Eq. 7
    similarity: Literal["adaptive", "cosine", "attention", "npa"] = "adaptive"  # Table 8
    weight_in: Literal["numerator_and_denominator", "numerator_only"] = "numerator_and_denominator"
    detach_weight: bool = True


@dataclass
class BranchLoss:
    """The losses and calibration outcome of one contrastive branch over M views."""

    contrastive: Tensor
    calibrated: Tensor
    mask: Tensor | None  # (M, M) bool calibrated pairs, or None when calibration is off


def mixed_negative_cosines(z: Tensor, groups: Tensor, alpha: float) -> Tensor:
    """(M, M) cosines with each negative replaced by a Beta(alpha, alpha) mix (official ``neg_inter``).

    Negative column j is mixed with column pi(j) of a different image, one random permutation shared by
    all anchors, one lambda per (anchor, negative) slot: u = lam*z_j + (1-lam)*z_pi(j) (unnormalised
    embeddings), cos(q_i, u) from M x M products only (no M x M x d tensor). A slot whose partner is a
    view of the anchor's own image is not mixed. Same-image entries are the plain cosines.
    """
    m = z.shape[0]
    q = torch.nn.functional.normalize(z, dim=1)
    perm = torch.randperm(m, device=z.device)
    lam = torch.distributions.Beta(alpha, alpha).sample((m, m)).to(device=z.device, dtype=z.dtype)
    qa = q @ z.T  # q_i . z_j
    qb = qa[:, perm]  # q_i . z_pi(j)
    sq = (z * z).sum(1)
    ab = (z * z[perm]).sum(1)
    norm2 = lam**2 * sq[None, :] + (1 - lam) ** 2 * sq[perm][None, :] + 2 * lam * (1 - lam) * ab[None, :]
    mixed = (lam * qa + (1 - lam) * qb) / norm2.clamp_min(1e-12).sqrt()
    keep = groups[perm][None, :] == groups[:, None]  # partner shares the anchor's image: no mixing
    plain = cosine_matrix(z)
    negative = candidate_mask(groups)
    return torch.where(negative & ~keep, mixed, plain)


def info_nce_from_cosines(cos: Tensor, groups: Tensor, calibrated: Tensor | None, tau: float) -> Tensor:
    """Eq. 6 (positive in the denominator) from a given (M, M) cosine matrix; mean over positive pairs."""
    m = groups.shape[0]
    other = candidate_mask(groups)
    positives = ~other & ~torch.eye(m, dtype=torch.bool, device=groups.device)
    negatives = other if calibrated is None else other & ~calibrated
    logits = cos / tau
    neg = logits.masked_fill(~negatives, float("-inf")).logsumexp(1, keepdim=True)
    per_pair = torch.logaddexp(logits, neg) - logits
    return per_pair[positives].mean() if positives.any() else cos.sum() * 0.0


@fp32  # scores, NS sums and losses in float32 under mixed precision
def branch_loss(
    z: Tensor,
    groups: Tensor,
    cp: CalibrationParams,
    tau: float,
    denominator: str = "all",
    neg_mixing_alpha: float = 0.0,
) -> BranchLoss:
    """Contrastive loss (Eq. 6) of one branch, with Algorithm 1 calibration and Eq. 7 when enabled."""
    mask = scores = None
    if cp.enabled:
        scores = calibration_scores(z, cp.score, cp.alpha, cp.ns_reduction)  # Eq. 3 (or cosine), no grad
        mask = calibrate(scores, groups, cp.rule, cp.threshold, cp.k)  # Algorithm 1
    if neg_mixing_alpha > 0:
        l_con = info_nce_from_cosines(mixed_negative_cosines(z, groups, neg_mixing_alpha), groups, mask, tau)
    else:
        l_con = contrastive_loss(z, groups, calibrated=mask, tau=tau, denominator=denominator)
    if mask is not None and cp.loss:
        l_cal = calibrated_loss(z, groups, mask, scores, cp.beta, tau, cp.similarity, cp.weight_in,
                                cp.detach_weight)  # Eq. 7
    else:
        l_cal = torch.zeros((), device=z.device, dtype=z.dtype)
    return BranchLoss(l_con, l_cal, mask)


def view_truth(batch: dict[str, Tensor], key: str, n_views: int) -> Tensor | None:
    """The ground-truth ``key`` of every view (views are image-major repeats: view v shows image v % N)."""
    if key not in batch:
        return None
    values = batch[key]
    return values.repeat((n_views // values.shape[0],) + (1,) * (values.dim() - 1))


def calibration_logs(
    prefix: str, mask: Tensor | None, correct: Tensor | None, groups: Tensor | None = None
) -> dict[str, Tensor]:
    """``<prefix>_cal_pairs`` (count), ``_cal_rate`` (pairs per anchor) and ``_cal_correct`` when truth is known.

    With ``groups`` (source image of each view) as well, also ``_cal_hits`` (anchors with at least one correct
    calibrated partner) and ``_cal_findable`` (anchors with at least one true partner among their candidates,
    the views of other images): their epoch ratio is ``_cal_recall`` (see :func:`precision_from_means`).
    """
    if mask is None:
        return {}
    pairs = mask.sum().double()
    logs = {f"{prefix}_cal_pairs": pairs, f"{prefix}_cal_rate": pairs / mask.shape[0]}
    if correct is not None:
        logs[f"{prefix}_cal_correct"] = (mask & correct).sum().double()
        if groups is not None:
            candidates = groups[:, None] != groups[None, :]
            logs[f"{prefix}_cal_hits"] = (mask & correct).any(1).sum().double()
            logs[f"{prefix}_cal_findable"] = (correct & candidates).any(1).sum().double()
    return logs


def face_pair_truth(
    batch: dict[str, Tensor], n_views: int, keys: tuple[str, ...] = FACE_TRUTH_KEYS
) -> Tensor | None:
    """(M, M) bool: same identity or same emotion (``keys``), from whichever of them the batch carries."""
    out = None
    for key in keys:
        t = view_truth(batch, key, n_views)
        if t is not None:
            same = t[:, None] == t[None, :]
            out = same if out is None else out | same
    return out


def pose_pair_truth(yaw_views: Tensor | None) -> Tensor | None:
    """(M, M) bool from the yaw (degrees) of every view: |yaw_i - yaw_j| <= 15 degrees."""
    if yaw_views is None:
        return None
    yaw = yaw_views.float().reshape(-1)
    return (yaw[:, None] - yaw[None, :]).abs() <= POSE_TOLERANCE_DEG


def precision_from_means(means: dict[str, float], prefixes: tuple[str, ...]) -> dict[str, float]:
    """Epoch precision sum(correct) / sum(pairs) and recall sum(hits) / sum(findable) of the calibrated pairs.

    Each is skipped when its inputs are missing (no truth, no groups) or its denominator is zero.
    """
    out = {}
    for prefix in prefixes:
        pairs, correct = means.get(f"{prefix}_cal_pairs"), means.get(f"{prefix}_cal_correct")
        if pairs and correct is not None:
            out[f"{prefix}_cal_precision"] = correct / pairs
        findable, hits = means.get(f"{prefix}_cal_findable"), means.get(f"{prefix}_cal_hits")
        if findable and hits is not None:
            out[f"{prefix}_cal_recall"] = hits / findable
    return out

"""Neighbourhood-cohesive pair alignment (NPA) and false-negative pair calibration (PCFRL Sec. 3.3).

A plug-in for any contrastive method: given the L2-normalised embeddings of the 2N views of a batch and
the source image of each view, find each anchor's false-negative partners among the views of the *other*
images (Group B). Pose and face features are calibrated separately (two calls).

Usage (the hyper-parameters default to the schema's ``CalibrationParams``, the one place they are written)::

    import torch
    from pcfrl_bench.calibration import pair_alignment, calibrate
    from pcfrl_bench.losses import contrastive_loss, calibrated_loss

    z = head(backbone(torch.cat([view1, view2])))         # (2N, d) embeddings
    groups = torch.arange(N).repeat(2)                     # source image of each view
    pa = pair_alignment(z)                                 # Eq. 3 (alpha), no gradient
    cal = calibrate(pa, groups)                            # Algorithm 1 (threshold T), (2N, 2N) bool
    loss = contrastive_loss(z, groups, calibrated=cal) + calibrated_loss(z, groups, cal, pa)  # Eq. 6 + Eq. 7 (beta)

``cal[i, j]`` is True when view j is a calibrated (false-negative -> positive) partner of anchor i;
it is removed from i's negatives and learned with the calibrated loss (Eq. 7). Calibration needs nothing from
the losses; the losses use its cosine matrix and candidate mask (one direction).
"""

from __future__ import annotations

import typing

import torch
import torch.nn.functional as F
from torch import Tensor

from pcfrl_bench.errors import ConfigError
from pcfrl_bench.schema.methods import CalibrationParams as Defaults

_CHOICES = typing.get_type_hints(Defaults)
RULES: tuple[str, ...] = typing.get_args(_CHOICES["rule"])
SCORES: tuple[str, ...] = typing.get_args(_CHOICES["score"])
NS_REDUCTIONS: tuple[str, ...] = typing.get_args(_CHOICES["ns_reduction"])


def cosine_matrix(z: Tensor) -> Tensor:
    """(M, d) -> (M, M) cosine similarities of the rows (Eq. 4); zero rows give 0."""
    zn = F.normalize(z, dim=1)
    return zn @ zn.T


def neighbourhood_consistency(z: Tensor, reduction: str = Defaults.ns_reduction) -> Tensor:
    """Eq. 5: NS_ij = sum_{k != i, j} cos(i, k) cos(k, j) for all pairs, (M, M).

    Computed as S@S minus the k = i and k = j terms (S_ii S_ij + S_ij S_jj); the diagonal excludes k = i
    only. ``z`` may be unnormalised. ``reduction="mean"`` divides by the number of terms (M - 2 off the
    diagonal) - not in the paper, but keeps NS on the scale of a cosine whatever the batch size.
    """
    if reduction not in NS_REDUCTIONS:
        raise ConfigError(f"NS reduction must be one of {', '.join(NS_REDUCTIONS)}, got {reduction!r}")
    s = cosine_matrix(z)
    d = torch.diagonal(s)  # 1 for non-zero rows
    ss = s @ s
    ns = ss - s * d[:, None] - s * d[None, :]  # drop k = i and k = j
    diag = torch.diagonal(ss) - d * d  # i == j: only k = i is excluded
    ns = ns - torch.diag_embed(torch.diagonal(ns)) + torch.diag_embed(diag)
    if reduction == "mean":
        m = s.shape[0]
        counts = torch.full_like(ns, max(m - 2, 1))
        counts.fill_diagonal_(max(m - 1, 1))
        ns = ns / counts
    return ns


def pair_alignment(
    z: Tensor, alpha: float = Defaults.alpha, *, grad: bool = False, ns_reduction: str = Defaults.ns_reduction
) -> Tensor:
    """Eq. 3: PA = cos + alpha * NS, (M, M); the diagonal is not meaningful.

    ``ns_reduction``: ``sum`` as printed in Eq. 5, or ``mean`` (see :func:`neighbourhood_consistency`).

    Computed without gradient (as the paper's calibration does) unless ``grad=True``, which the
    ``detach_weight=False`` variant of the calibrated loss needs.
    """
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        zz = z if grad else z.detach()
        return cosine_matrix(zz) + alpha * neighbourhood_consistency(zz, ns_reduction)


def calibration_scores(
    z: Tensor, score: str = Defaults.score, alpha: float = Defaults.alpha, ns_reduction: str = Defaults.ns_reduction
) -> Tensor:
    """Scores used to find false negatives (Table 5): ``npa`` (Eq. 3) or plain ``cosine``; no gradient."""
    if score == "npa":
        return pair_alignment(z, alpha, ns_reduction=ns_reduction)
    if score == "cosine":
        with torch.no_grad():
            return cosine_matrix(z.detach())
    raise ConfigError(f"calibration score must be one of {', '.join(SCORES)}, got {score!r}")


def candidate_mask(groups: Tensor) -> Tensor:
    """(M, M) bool: True where view j comes from a different image than anchor i (Group B of i)."""
    return groups[:, None] != groups[None, :]


def calibrate(
    scores: Tensor,
    groups: Tensor,
    rule: str = Defaults.rule,
    threshold: float = Defaults.threshold,
    k: int = Defaults.k,
) -> Tensor:
    """Algorithm 1: (M, M) bool mask of calibrated (anchor i, partner j) pairs.

    Candidates of anchor i are the views j with ``groups[j] != groups[i]``. Rules:
    ``threshold`` - the best candidate k_m, kept if ``scores[i, k_m] >= threshold`` (Algorithm 1);
    ``top1`` - always the best candidate (NN, Table 7); ``topk`` - the ``k`` best candidates (Table 7).
    Anchors without any candidate get no partner. With one partner per anchor, ties go to the lowest index.
    """
    if rule not in RULES:
        raise ConfigError(f"calibration rule must be one of {', '.join(RULES)}, got {rule!r}")
    m = scores.shape[0]
    if scores.shape != (m, m) or groups.shape != (m,):
        shapes = f"{tuple(scores.shape)}, {tuple(groups.shape)}"
        raise ValueError(f"scores must be (M, M) and groups (M,), got {shapes}")
    cand = candidate_mask(groups.to(scores.device))
    masked = scores.detach().masked_fill(~cand, float("-inf"))
    n_cand = cand.sum(1)
    if rule == "topk":
        if k < 1:
            raise ConfigError(f"calibration k must be >= 1, got {k}")
        kk = min(k, m)
    else:
        kk = 1
    if kk == 1:  # argmax returns the first maximum: deterministic ties
        idx = masked.argmax(dim=1, keepdim=True)
        values = masked.gather(1, idx)
    else:
        values, idx = torch.topk(masked, kk, dim=1)
    ranks = torch.arange(kk, device=scores.device)[None, :]
    keep = ranks < n_cand[:, None]  # fewer candidates than k
    if rule == "threshold":
        keep = keep & (values >= threshold)
    out = torch.zeros(m, m, dtype=torch.bool, device=scores.device)
    out.scatter_(1, idx, keep)
    return out


__all__ = [
    "cosine_matrix",
    "neighbourhood_consistency",
    "pair_alignment",
    "calibration_scores",
    "candidate_mask",
    "calibrate",
    "RULES",
    "SCORES",
    "NS_REDUCTIONS",
]

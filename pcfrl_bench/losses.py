"""Losses of PCL / PCFRL (Sec. 3.2-3.5, Eq. 1, 2, 6, 7, 8) and Dynamic Weight Averaging.

Conventions: ``z`` is an (M, d) batch of embeddings of M = 2N (or more) views, L2-normalised inside;
``groups`` (M,) gives each view's source image (views of one image are positives of each other);
``calibrated`` is the (M, M) bool mask from :func:`pcfrl_bench.calibration.calibrate`
(row = anchor, column = calibrated partner). Every loss is computed in the log domain.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pcfrl_bench.calibration import candidate_mask, cosine_matrix
from pcfrl_bench.errors import ConfigError
from pcfrl_bench.precision import fp32
from pcfrl_bench.schema.methods import CalibrationParams, PCLParams

# the choices and defaults are the schema's (PCLParams, CalibrationParams): written there once
ORTH_MODES: tuple[str, ...] = typing.get_args(typing.get_type_hints(PCLParams)["orth"])
DENOMINATORS: tuple[str, ...] = typing.get_args(typing.get_type_hints(PCLParams)["denominator"])
SIMILARITIES: tuple[str, ...] = typing.get_args(typing.get_type_hints(CalibrationParams)["similarity"])
WEIGHT_IN: tuple[str, ...] = typing.get_args(typing.get_type_hints(CalibrationParams)["weight_in"])
NEG_INF = float("-inf")


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def reconstruction_loss(
    decoder: Callable[[Tensor, Tensor], Tensor],
    f: Tensor,
    p: Tensor,
    f_hat: Tensor,
    p_hat: Tensor,
    s: Tensor,
    s_hat: Tensor,
) -> Tensor:
    """Eq. 1: |s - D(f,p)| + |s^ - D(f,p^)| + |s - D(f^,p)| + |s^ - D(f^,p^)|, each L1 with mean reduction.

    ``decoder(f, p)`` reconstructs a face with the face code f and the pose code p; the target is the
    image whose pose code is used. Four separate decoder calls (BatchNorm statistics per call, as in
    the official code). s, s_hat are the *clean* images (the official code feeds noisy inputs).
    """
    return (
        F.l1_loss(decoder(f, p), s)
        + F.l1_loss(decoder(f, p_hat), s_hat)
        + F.l1_loss(decoder(f_hat, p), s)
        + F.l1_loss(decoder(f_hat, p_hat), s_hat)
    )


@fp32
def orthogonality_loss(f: Tensor, p: Tensor, mode: str = PCLParams.orth,
                       normalize: bool = PCLParams.orth_normalize) -> Tensor:
    """Eq. 2 term for one (F_f, F_p) pair of (B, D) features; the caller sums original + pose-augmented.

    ``paper``: (1/B) sum_i (f_i . p_i)^2 as printed (``normalize=True`` uses unit rows, i.e. cos^2).
    ``official``: the code's DiffLoss - centre each column over the batch, divide rows by their
    (detached) norm + 1e-6, and take the mean of the squared entries of the D x D matrix f^T p.
    """
    _check("orthogonality mode", mode, ORTH_MODES)
    if mode == "paper":
        if normalize:
            f, p = F.normalize(f, dim=1), F.normalize(p, dim=1)
        return ((f * p).sum(dim=1) ** 2).mean()  # Eq. 2
    fc = f - f.mean(dim=0, keepdim=True)
    pc = p - p.mean(dim=0, keepdim=True)
    fc = fc / (fc.norm(dim=1, keepdim=True).detach() + 1e-6)
    pc = pc / (pc.norm(dim=1, keepdim=True).detach() + 1e-6)
    return (fc.T @ pc).pow(2).mean()


def _pair_masks(
    groups: Tensor, calibrated: Tensor | None, allowed: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(positive mask, negative mask), each (M, M) bool; calibrated partners leave the negatives.

    ``allowed`` (M, M) bool, optional: the only columns that may be negatives of each anchor (e.g. the
    flipped images of the official pose loss); views of the anchor's own image never are.
    """
    m = groups.shape[0]
    other = candidate_mask(groups)
    eye = torch.eye(m, dtype=torch.bool, device=groups.device)
    positives = ~other & ~eye
    negatives = other
    for name, mask in (("allowed", allowed), ("calibrated", calibrated)):
        if mask is None:
            continue
        if mask.shape != (m, m):
            raise ValueError(f"{name} must be ({m}, {m}), got {tuple(mask.shape)}")
        mask = mask.to(device=groups.device, dtype=torch.bool)
        negatives = negatives & (mask if name == "allowed" else ~mask)
    return positives, negatives


def _masked_logsumexp(logits: Tensor, mask: Tensor) -> Tensor:
    """Row-wise log-sum-exp over ``mask`` (M, 1); -inf for empty rows, with finite gradients."""
    has_any = mask.any(dim=1, keepdim=True)
    safe = logits.masked_fill(~mask, NEG_INF).masked_fill(~has_any, 0.0)
    lse = safe.logsumexp(dim=1, keepdim=True)
    return torch.where(has_any, lse, torch.full_like(lse, NEG_INF))


def _zero_with_grad(z: Tensor) -> Tensor:
    return z.sum() * 0.0


@dataclass
class NegativeMix:
    """One draw of the official code's negative mixing: ``lam`` (A, S) per (anchor, slot), ``perm`` (S,)."""

    lam: Tensor
    perm: Tensor


def negative_slots(groups: Tensor, allowed: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(anchors (A,), slot columns (A, S)): each anchor's negatives in increasing column order.

    Anchors are the views with a positive (another view of their image); all must have the same number S
    of negatives (the official code's layout).
    """
    positives, negatives = _pair_masks(groups, None, allowed)
    anchors = positives.any(1).nonzero()[:, 0]
    counts = negatives[anchors].sum(1)
    if anchors.numel() == 0 or bool((counts != counts[0]).any()):
        raise ValueError("negative mixing needs anchors with the same number of negatives each")
    return anchors, negatives[anchors].nonzero()[:, 1].view(anchors.numel(), int(counts[0]))


def draw_negative_mix(groups: Tensor, alpha: float, allowed: Tensor | None = None) -> NegativeMix:
    """Beta(alpha, alpha) weights per (anchor, slot) and one slot permutation shared by all anchors."""
    anchors, slots = negative_slots(groups, allowed)
    perm = torch.randperm(slots.shape[1], device=groups.device)
    lam = torch.distributions.Beta(alpha, alpha).sample(slots.shape)
    return NegativeMix(lam.to(groups.device), perm)


def mixed_negative_cosines(z: Tensor, groups: Tensor, mix: NegativeMix, allowed: Tensor | None = None) -> Tensor:
    """(M, M) cosines with each negative replaced by the official code's mix (``neg_inter_info_nce_loss*``).

    Slot s of anchor i is its s-th negative column c_i(s) (:func:`negative_slots`); the mix is
    u = lam[i, s] z_{c_i(s)} + (1 - lam[i, s]) z_{c_i(perm[s])} of the *unnormalised* embeddings, and the entry
    becomes cos(z_i, u). Computed from M x M products only (no A x S x d tensor). Other entries: plain cosines.
    """
    anchors, slots = negative_slots(groups.to(z.device), allowed)
    lam = mix.lam.to(device=z.device, dtype=z.dtype)
    partner = slots[:, mix.perm.to(z.device)]
    q = F.normalize(z, dim=1)
    qz = (q @ z.T)[anchors]  # q_i . z_j
    gram = z @ z.T
    sq = torch.diagonal(gram)
    qa, qb = qz.gather(1, slots), qz.gather(1, partner)
    ab = gram[slots, partner]
    norm2 = lam**2 * sq[slots] + (1 - lam) ** 2 * sq[partner] + 2 * lam * (1 - lam) * ab
    mixed = (lam * qa + (1 - lam) * qb) / norm2.clamp_min(1e-24).sqrt()
    out = cosine_matrix(z).clone()
    rows = out[anchors].scatter(1, slots, mixed)
    return out.index_copy(0, anchors, rows)


def contrastive_loss(
    z: Tensor,
    groups: Tensor,
    calibrated: Tensor | None = None,
    tau: float = PCLParams.temperature,
    denominator: str = PCLParams.denominator,
    *,
    allowed: Tensor | None = None,
    cosines: Tensor | None = None,
) -> Tensor:
    """Eq. 6 InfoNCE over all views, mean over the positive pairs (i, j), j != i, same group.

    Negatives of anchor i: views of other images (only the ``allowed`` columns when given), minus i's
    calibrated partners. ``denominator="all"``: -log(e^{s_ij/t} / (e^{s_ij/t} + sum_N e^{s_in/t}))
    (standard / official code, equals NT-Xent); ``"negatives"``: the literal Eq. 6,
    -log(e^{s_ij/t} / sum_N e^{s_in/t}). Pairs whose anchor has no negative are skipped under
    ``"negatives"`` (the ratio is undefined). ``cosines``: the (M, M) similarities to use instead of
    cos(z_i, z_j) (e.g. :func:`mixed_negative_cosines`).
    """
    _check("denominator", denominator, DENOMINATORS)
    groups = groups.to(z.device)
    positives, negatives = _pair_masks(groups, calibrated, allowed)
    logits = (cosine_matrix(z) if cosines is None else cosines) / tau  # Eq. 6
    neg_lse = _masked_logsumexp(logits, negatives)  # (M, 1)
    if denominator == "all":
        per_pair = torch.logaddexp(logits, neg_lse) - logits
    else:
        per_pair = neg_lse - logits
        positives = positives & negatives.any(dim=1, keepdim=True)
    if not positives.any():
        return _zero_with_grad(z)
    return per_pair[positives].mean()


def calibrated_loss(
    z: Tensor,
    groups: Tensor,
    calibrated: Tensor,
    pa: Tensor,
    beta: float = CalibrationParams.beta,
    tau: float = PCLParams.temperature,
    similarity: str = CalibrationParams.similarity,
    weight_in: str = CalibrationParams.weight_in,
    detach_weight: bool = CalibrationParams.detach_weight,
    min_weight: float = 1e-6,
    *,
    allowed: Tensor | None = None,
) -> Tensor:
    """Eq. 7 calibrated loss, mean over the calibrated pairs (i, k) (0 with gradient if there are none).

    The log-numerator of a calibrated pair depends on ``similarity`` (Table 8):
    ``adaptive`` (Eq. 7): log w + s_ik/t with w = beta * PA(i, k), clamped at ``min_weight``;
    ``cosine``: s_ik/t (plain positive, w = 1); ``attention``: log w + s_ik/t with w = softmax over the
    anchor's candidates (other images) of s/t, taken at k (SNCLR-style); ``npa``: PA(i, k)/t.
    Denominator: sum over i's negatives N(i) (other images minus calibrated partners), plus the
    numerator term itself when ``weight_in="numerator_and_denominator"`` (docs/methods.md, "Decisions";
    literal Eq. 7 is ``"numerator_only"``). ``detach_weight`` stops gradients through w / PA (then ``pa`` may come from
    ``pair_alignment(z, grad=True)``).
    """
    _check("calibrated similarity", similarity, SIMILARITIES)
    _check("calibrated weight_in", weight_in, WEIGHT_IN)
    groups = groups.to(z.device)
    _, negatives = _pair_masks(groups, calibrated, allowed)
    cal = calibrated.to(device=z.device, dtype=torch.bool) & candidate_mask(groups)
    if weight_in == "numerator_only":
        cal = cal & negatives.any(dim=1, keepdim=True)  # undefined without any negative
    if not cal.any():
        return _zero_with_grad(z)
    logits = cosine_matrix(z) / tau
    pa_used = pa.detach() if detach_weight else pa
    if similarity == "adaptive":
        log_num = torch.log((beta * pa_used).clamp_min(min_weight)) + logits  # Eq. 7, w = beta * PA
    elif similarity == "cosine":
        log_num = logits
    elif similarity == "attention":
        att = logits.detach() if detach_weight else logits
        cand = candidate_mask(groups)
        log_w = att - _masked_logsumexp(att, cand)  # log softmax over the anchor's candidates
        log_num = log_w + logits
    else:  # npa: PA replaces cos in the numerator
        log_num = pa_used / tau
    neg_lse = _masked_logsumexp(logits, negatives)
    if weight_in == "numerator_and_denominator":
        per_pair = torch.logaddexp(log_num, neg_lse) - log_num
    else:
        per_pair = neg_lse - log_num
    return per_pair[cal].mean()


class DynamicWeightAverage:
    """DWA (Liu, Johns & Davison, CVPR 2019) for the weights alpha_k of Eq. 8.

    Call ``update(losses)`` once per finished epoch with the epoch-mean *unweighted* loss of each task,
    then ``weights()`` gives the weights for the next epoch: all 1 until two epochs are recorded, then
    alpha_k = K * softmax_k(w / T) with w_k = L_k(t-1) / L_k(t-2).
    """

    def __init__(self, n_tasks: int, temperature: float = PCLParams.dwa_temperature):
        if n_tasks < 1:
            raise ConfigError(f"DWA needs at least one task, got {n_tasks}")
        if temperature <= 0:
            raise ConfigError(f"DWA temperature must be > 0, got {temperature}")
        self.n_tasks = n_tasks
        self.temperature = float(temperature)
        self.history: list[list[float]] = []  # the last two epoch-mean loss vectors

    def update(self, epoch_mean_losses: Sequence[float] | Tensor) -> None:
        raw = epoch_mean_losses.tolist() if isinstance(epoch_mean_losses, Tensor) else epoch_mean_losses
        values = [float(v) for v in raw]
        if len(values) != self.n_tasks:
            raise ValueError(f"DWA expects {self.n_tasks} losses, got {len(values)}")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"DWA losses must be finite and >= 0, got {values}")
        self.history = (self.history + [values])[-2:]

    def weights(self) -> list[float]:
        """alpha for the next epoch (length n_tasks, sums to n_tasks)."""
        if len(self.history) < 2:
            return [1.0] * self.n_tasks
        prev2, prev1 = self.history
        ratios = torch.tensor([a / b if b > 0 else 1.0 for a, b in zip(prev1, prev2)], dtype=torch.float64)
        return (self.n_tasks * torch.softmax(ratios / self.temperature, dim=0)).tolist()

    def state_dict(self) -> dict:
        history = [list(h) for h in self.history]
        return {"n_tasks": self.n_tasks, "temperature": self.temperature, "history": history}

    def load_state_dict(self, state: dict) -> None:
        if int(state["n_tasks"]) != self.n_tasks:
            raise ValueError(f"DWA state has {state['n_tasks']} tasks, this instance {self.n_tasks}")
        self.temperature = float(state["temperature"])
        self.history = [list(map(float, h)) for h in state["history"]][-2:]


__all__ = [
    "reconstruction_loss",
    "orthogonality_loss",
    "contrastive_loss",
    "calibrated_loss",
    "NegativeMix",
    "negative_slots",
    "draw_negative_mix",
    "mixed_negative_cosines",
    "DynamicWeightAverage",
    "ORTH_MODES",
    "DENOMINATORS",
    "SIMILARITIES",
    "WEIGHT_IN",
]

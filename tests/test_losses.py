from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pytorch_metric_learning.losses import NTXentLoss

from pcfrl_bench.calibration import calibrate, pair_alignment
from pcfrl_bench.errors import ConfigError
from pcfrl_bench.losses import (
    DynamicWeightAverage,
    calibrated_loss,
    contrastive_loss,
    orthogonality_loss,
    reconstruction_loss,
)

TAU = 0.07


def _emb(m: int = 8, d: int = 5, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return torch.randn(m, d, dtype=torch.float64)


def _cos(z: torch.Tensor, i: int, j: int) -> float:
    return float(F.cosine_similarity(z[i], z[j], dim=0))


GROUPS = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])  # N = 4 images, two views each


# ---- Eq. 6 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("groups", [GROUPS, torch.tensor([0, 0, 0, 1, 1, 1, 2, 2])])
def test_contrastive_equals_ntxent_when_uncalibrated(groups: torch.Tensor) -> None:
    z = _emb().float().requires_grad_(True)
    ours = contrastive_loss(z, groups, tau=TAU)
    ref = NTXentLoss(temperature=TAU)(z, groups)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    g_ours = torch.autograd.grad(ours, z)[0]
    g_ref = torch.autograd.grad(NTXentLoss(temperature=TAU)(z, groups), z)[0]
    assert torch.allclose(g_ours, g_ref, atol=1e-5)


def _hand_eq6(z: torch.Tensor, groups: torch.Tensor, cal: torch.Tensor | None, literal: bool) -> float:
    m = z.shape[0]
    losses = []
    for i in range(m):
        negs = [k for k in range(m) if groups[k] != groups[i] and not (cal is not None and cal[i, k])]
        for j in range(m):
            if j == i or groups[j] != groups[i]:
                continue
            num = math.exp(_cos(z, i, j) / TAU)
            den = sum(math.exp(_cos(z, i, k) / TAU) for k in negs) + (0.0 if literal else num)
            losses.append(-math.log(num / den))
    return sum(losses) / len(losses)


def test_contrastive_literal_denominator_by_hand() -> None:
    z = _emb()
    got = contrastive_loss(z, GROUPS, tau=TAU, denominator="negatives").item()
    assert got == pytest.approx(_hand_eq6(z, GROUPS, None, literal=True), rel=1e-9)


@pytest.mark.parametrize("denominator", ["all", "negatives"])
def test_contrastive_removes_calibrated_partners_from_negatives(denominator: str) -> None:
    z = _emb(seed=3)
    cal = torch.zeros(8, 8, dtype=torch.bool)
    cal[0, 1] = cal[5, 2] = cal[5, 6] = True
    got = contrastive_loss(z, GROUPS, calibrated=cal, tau=TAU, denominator=denominator).item()
    expected = _hand_eq6(z, GROUPS, cal, literal=denominator == "negatives")
    assert got == pytest.approx(expected, rel=1e-9)
    uncalibrated = contrastive_loss(z, GROUPS, tau=TAU, denominator=denominator).item()
    assert got != pytest.approx(uncalibrated, rel=1e-6)


def test_contrastive_bad_option() -> None:
    with pytest.raises(ConfigError):
        contrastive_loss(_emb(), GROUPS, denominator="some")


# ---- Eq. 7 -----------------------------------------------------------------------------------------


def _hand_eq7(z, groups, cal, pa, beta, similarity, both: bool) -> float:
    m = z.shape[0]
    losses = []
    for i in range(m):
        negs = [k for k in range(m) if groups[k] != groups[i] and not cal[i, k]]
        cands = [k for k in range(m) if groups[k] != groups[i]]
        neg_sum = sum(math.exp(_cos(z, i, k) / TAU) for k in negs)
        for k in range(m):
            if not cal[i, k]:
                continue
            e = math.exp(_cos(z, i, k) / TAU)
            if similarity == "adaptive":
                num = beta * float(pa[i, k]) * e
            elif similarity == "cosine":
                num = e
            elif similarity == "attention":
                num = e * e / sum(math.exp(_cos(z, i, c) / TAU) for c in cands)
            else:
                num = math.exp(float(pa[i, k]) / TAU)
            losses.append(-math.log(num / (neg_sum + (num if both else 0.0))))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("similarity", ["adaptive", "cosine", "attention", "npa"])
@pytest.mark.parametrize("weight_in", ["numerator_and_denominator", "numerator_only"])
def test_calibrated_loss_by_hand(similarity: str, weight_in: str) -> None:
    z = _emb(seed=5)
    pa = pair_alignment(z, alpha=0.1).abs() + 0.5  # positive weights, small enough for exp(PA/tau)
    cal = torch.zeros(8, 8, dtype=torch.bool)
    cal[0, 1] = cal[3, 6] = cal[3, 2] = cal[7, 0] = True
    got = calibrated_loss(
        z, GROUPS, cal, pa, beta=0.2, tau=TAU, similarity=similarity, weight_in=weight_in
    ).item()
    expected = _hand_eq7(z, GROUPS, cal, pa, 0.2, similarity, both=weight_in == "numerator_and_denominator")
    assert got == pytest.approx(expected, rel=1e-9)


def test_calibrated_weight_beta_matters_and_detach() -> None:
    z = _emb(seed=2).requires_grad_(True)
    pa = pair_alignment(z, alpha=10.0)
    cal = calibrate(pa, GROUPS, rule="top1")
    low = calibrated_loss(z, GROUPS, cal, pa.abs() + 1, beta=0.2)
    high = calibrated_loss(z, GROUPS, cal, pa.abs() + 1, beta=1.0)
    assert high.item() < low.item()  # larger weight on the calibrated positive -> smaller loss
    pa_grad = pair_alignment(z, alpha=10.0, grad=True)
    detached = calibrated_loss(z, GROUPS, cal, pa_grad, beta=1.0, detach_weight=True)
    live = calibrated_loss(z, GROUPS, cal, pa_grad, beta=1.0, detach_weight=False)
    assert detached.item() == pytest.approx(live.item())
    g_det = torch.autograd.grad(detached, z)[0]
    g_live = torch.autograd.grad(live, z)[0]
    assert not torch.allclose(g_det, g_live)


def test_calibrated_loss_without_pairs_is_zero_with_grad() -> None:
    z = _emb().requires_grad_(True)
    none = torch.zeros(8, 8, dtype=torch.bool)
    loss = calibrated_loss(z, GROUPS, none, torch.ones(8, 8, dtype=torch.float64), beta=1.0)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_losses_finite_when_anchor_has_no_negatives() -> None:
    z = _emb(m=4).requires_grad_(True)
    groups = torch.tensor([0, 1, 0, 1])
    cal = torch.tensor([[0, 1, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    pa = torch.full((4, 4), 2.0, dtype=torch.float64)
    total = contrastive_loss(z, groups, cal) + calibrated_loss(z, groups, cal, pa, beta=1.0)
    total = total + contrastive_loss(z, groups, cal, denominator="negatives")
    total = total + calibrated_loss(z, groups, cal, pa, beta=1.0, similarity="attention", detach_weight=False)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(z.grad).all()


# ---- Eq. 1, Eq. 2 ----------------------------------------------------------------------------------


def test_orthogonality_paper_by_hand_and_zero_for_orthogonal() -> None:
    f = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    p = torch.tensor([[2.0, -1.0, 5.0], [4.0, 0.0, 0.0]])
    assert orthogonality_loss(f, p).item() == 0.0  # (1*2 - 2*1)^2 = 0, (0)^2 = 0
    p2 = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert orthogonality_loss(f, p2).item() == pytest.approx((3.0**2 + 6.0**2) / 2)
    cos2 = ((3 / (math.sqrt(5) * math.sqrt(2))) ** 2 + (6 / (math.sqrt(10) * 2)) ** 2) / 2
    assert orthogonality_loss(f, p2, normalize=True).item() == pytest.approx(cos2)


def test_orthogonality_official_by_hand() -> None:
    torch.manual_seed(0)
    f, p = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    fc, pc = f - f.mean(0), p - p.mean(0)
    fc = fc / (fc.norm(dim=1, keepdim=True) + 1e-6)
    pc = pc / (pc.norm(dim=1, keepdim=True) + 1e-6)
    expected = sum(float(fc[:, a] @ pc[:, b]) ** 2 for a in range(3) for b in range(4)) / 12
    assert orthogonality_loss(f, p, mode="official").item() == pytest.approx(expected, rel=1e-9)
    # zero-mean features whose columns are orthogonal over the batch: zero cross-correlation
    a = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]]) * torch.tensor([[1.0, 2.0]])
    b = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]]) * torch.tensor([[1.0, 3.0, -2.0]])
    assert orthogonality_loss(a, b, mode="official").item() == pytest.approx(0.0, abs=1e-12)  # float rounding
    with pytest.raises(ConfigError):
        orthogonality_loss(f, f, mode="pcl")


def test_reconstruction_loss_four_terms() -> None:
    torch.manual_seed(0)
    f, p, fh, ph = (torch.randn(2, 12) for _ in range(4))
    s, sh = torch.rand(2, 3, 2, 2), torch.rand(2, 3, 2, 2)

    def decoder(face: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
        return (face + 2 * pose).reshape(2, 3, 2, 2)

    expected = 0.0
    for face, pose, target in ((f, p, s), (f, ph, sh), (fh, p, s), (fh, ph, sh)):  # Eq. 1
        expected += (target - (face + 2 * pose).reshape(2, 3, 2, 2)).abs().sum().item() / 24
    assert reconstruction_loss(decoder, f, p, fh, ph, s, sh).item() == pytest.approx(expected, rel=1e-6)


# ---- DWA -------------------------------------------------------------------------------------------


def test_dwa_weights_from_history() -> None:
    dwa = DynamicWeightAverage(2, temperature=2.0)
    assert dwa.weights() == [1.0, 1.0]
    dwa.update([1.0, 2.0])
    assert dwa.weights() == [1.0, 1.0]  # still within the first two epochs
    dwa.update([0.5, 2.0])  # ratios w = [0.5, 1.0]
    e1, e2 = math.exp(0.5 / 2), math.exp(1.0 / 2)
    assert dwa.weights() == pytest.approx([2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)])
    dwa.update(torch.tensor([0.25, 3.0]))  # ratios from the last two epochs only: [0.5, 1.5]
    e1, e2 = math.exp(0.5 / 2), math.exp(1.5 / 2)
    assert dwa.weights() == pytest.approx([2 * e1 / (e1 + e2), 2 * e2 / (e1 + e2)])
    assert sum(dwa.weights()) == pytest.approx(2.0)


def test_dwa_state_round_trip_and_errors() -> None:
    dwa = DynamicWeightAverage(3, temperature=1.5)
    for losses in ([3.0, 2.0, 1.0], [2.0, 2.0, 2.0], [1.0, 4.0, 2.0]):
        dwa.update(losses)
    resumed = DynamicWeightAverage(3)
    resumed.load_state_dict(dwa.state_dict())
    assert resumed.weights() == pytest.approx(dwa.weights())
    assert resumed.temperature == 1.5
    with pytest.raises(ValueError):
        dwa.update([1.0, 2.0])
    with pytest.raises(ValueError):
        dwa.update([1.0, float("nan"), 2.0])
    with pytest.raises(ConfigError):
        DynamicWeightAverage(2, temperature=0.0)

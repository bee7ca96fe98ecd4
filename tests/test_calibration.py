from __future__ import annotations

import math

import pytest
import torch

from pcfrl_bench.calibration import (
    calibrate,
    calibration_scores,
    cosine_matrix,
    neighbourhood_consistency,
    pair_alignment,
)
from pcfrl_bench.errors import ConfigError


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(a @ b) / (math.sqrt(float(a @ a)) * math.sqrt(float(b @ b)))


@pytest.fixture
def z() -> torch.Tensor:
    torch.manual_seed(1)
    scales = torch.tensor([[1.0], [2.0], [0.5], [3.0], [1.0], [0.1]], dtype=torch.float64)
    return torch.randn(6, 4, dtype=torch.float64) * scales


def test_cosine_matrix_by_hand(z: torch.Tensor) -> None:
    s = cosine_matrix(z)
    for i in range(6):
        for j in range(6):
            assert s[i, j].item() == pytest.approx(_cos(z[i], z[j]), abs=1e-12)


def test_neighbourhood_consistency_triple_loop(z: torch.Tensor) -> None:
    ns = neighbourhood_consistency(z, "sum")
    m = z.shape[0]
    for i in range(m):
        for j in range(m):
            # Eq. 5: sum over k != i, j of cos(i, k) cos(k, j)
            expected = sum(_cos(z[i], z[k]) * _cos(z[k], z[j]) for k in range(m) if k not in (i, j))
            assert ns[i, j].item() == pytest.approx(expected, abs=1e-10)


def test_pair_alignment_is_cos_plus_alpha_ns_without_grad(z: torch.Tensor) -> None:
    m = z.shape[0]
    zg = z.clone().requires_grad_(True)
    pa = pair_alignment(zg, alpha=10.0, ns_reduction="sum")
    assert not pa.requires_grad
    for i in range(m):
        for j in range(m):
            if i == j:
                continue
            ns = sum(_cos(z[i], z[k]) * _cos(z[k], z[j]) for k in range(m) if k not in (i, j))
            assert pa[i, j].item() == pytest.approx(_cos(z[i], z[j]) + 10.0 * ns, abs=1e-9)
    assert torch.allclose(pair_alignment(z, alpha=0.0), cosine_matrix(z))
    assert pair_alignment(zg, grad=True).requires_grad


def test_ns_mean_reduction(z: torch.Tensor) -> None:
    total, mean = neighbourhood_consistency(z, "sum"), neighbourhood_consistency(z, "mean")
    assert torch.equal(neighbourhood_consistency(z), total)  # the function's default: Eq. 5 as printed
    off = ~torch.eye(6, dtype=torch.bool)
    assert torch.allclose(mean[off], total[off] / 4)  # M - 2 = 4 terms per off-diagonal entry
    assert torch.allclose(pair_alignment(z, 2.0, ns_reduction="mean"), cosine_matrix(z) + 2.0 * mean)
    with pytest.raises(ConfigError):
        neighbourhood_consistency(z, "max")


def test_calibration_scores_options(z: torch.Tensor) -> None:
    assert torch.allclose(calibration_scores(z, "npa", alpha=3.0), pair_alignment(z, alpha=3.0))
    assert torch.allclose(calibration_scores(z, "cosine"), cosine_matrix(z))
    with pytest.raises(ConfigError):
        calibration_scores(z, "dot")


# Hand-made scores for 3 images x 2 views: groups [0, 0, 1, 1, 2, 2].
GROUPS = torch.tensor([0, 0, 1, 1, 2, 2])
SCORES = torch.tensor(
    [
        # 0     1     2     3     4     5
        [0.0, 9.0, 0.5, 1.5, 0.2, 1.2],  # anchor 0: best candidate 3 (1.5), second 5 (1.2); 1 is own image
        [9.0, 0.0, 0.3, 0.1, 0.9, 0.4],  # anchor 1: best 4 (0.9) < T
        [0.5, 0.3, 0.0, 9.0, 1.0, 0.7],  # anchor 2: best 4 (1.0) == T
        [1.5, 0.1, 9.0, 0.0, 0.6, 0.8],  # anchor 3: best 0 (1.5)
        [0.2, 0.9, 1.0, 0.6, 0.0, 9.0],  # anchor 4: best 2 (1.0)
        [1.2, 0.4, 0.7, 0.8, 9.0, 0.0],  # anchor 5: best 0 (1.2)
    ]
)


def _pairs(mask: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in mask.nonzero()}


def test_threshold_rule() -> None:
    cal = calibrate(SCORES, GROUPS, rule="threshold", threshold=1.0)
    assert cal.dtype == torch.bool and cal.shape == (6, 6)
    assert _pairs(cal) == {(0, 3), (2, 4), (3, 0), (4, 2), (5, 0)}  # anchor 1 (0.9 < 1) stays uncalibrated
    assert _pairs(calibrate(SCORES, GROUPS, rule="threshold", threshold=1.3)) == {(0, 3), (3, 0)}


def test_top1_rule() -> None:
    cal = calibrate(SCORES, GROUPS, rule="top1")
    assert _pairs(cal) == {(0, 3), (1, 4), (2, 4), (3, 0), (4, 2), (5, 0)}


def test_topk_rule() -> None:
    cal = calibrate(SCORES, GROUPS, rule="topk", k=2)
    assert _pairs(cal) == {
        (0, 3), (0, 5), (1, 4), (1, 5), (2, 4), (2, 5), (3, 0), (3, 5), (4, 2), (4, 1), (5, 0), (5, 3),
    }
    # k larger than the 4 candidates: every candidate, never a view of the same image
    everything = calibrate(SCORES, GROUPS, rule="topk", k=10)
    assert torch.equal(everything, GROUPS[:, None] != GROUPS[None, :])


def test_no_candidates_and_bad_rule() -> None:
    same = torch.zeros(3, dtype=torch.long)
    assert not calibrate(torch.ones(3, 3) * 5, same, rule="top1").any()
    with pytest.raises(ConfigError):
        calibrate(SCORES, GROUPS, rule="nearest")
    with pytest.raises(ConfigError):
        calibrate(SCORES, GROUPS, rule="topk", k=0)


def test_clear_duplicates_are_calibrated_with_npa() -> None:
    # images 0 and 1 are the same face (near-identical embeddings), image 2 and 3 unrelated
    torch.manual_seed(0)
    base = torch.randn(3, 16)
    z = torch.stack([base[0], base[0], base[0], base[0], base[1], base[1], base[2], base[2]])
    z = z + 0.01 * torch.randn_like(z)
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    cal = calibrate(pair_alignment(z), groups, rule="threshold", threshold=1.0)
    for i in range(4):
        partners = cal[i].nonzero().flatten().tolist()
        assert len(partners) == 1 and groups[partners[0]] == 1 - groups[i]

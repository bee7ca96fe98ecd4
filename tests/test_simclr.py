import math

import torch
import torch.nn.functional as F

from pcfrl_bench.methods.simclr import nt_xent


def hand_nt_xent(z1, z2, t):
    """SimCLR's NT-Xent written out anchor by anchor."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i]
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / sum(sims))
    return total / (2 * n)


def test_nt_xent_matches_hand_computation():
    torch.manual_seed(0)
    z1, z2 = torch.randn(4, 5), torch.randn(4, 5)
    assert abs(nt_xent(z1, z2, 0.5).item() - hand_nt_xent(z1, z2, 0.5)) < 1e-5


def test_nt_xent_two_orthogonal_pairs_by_hand():
    # z1 = [e1, e2], z2 = [e1, e2]: positives have cos 1, negatives cos 0 -> loss = -log(e^2 / (e^2 + 2)) at t=0.5
    e = torch.eye(2)
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert abs(nt_xent(e, e.clone(), 0.5).item() - expected) < 1e-6

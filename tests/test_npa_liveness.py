"""benchmarks/npa_liveness.py: the effective rank by hand, and the script end to end at the smoke preset."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "npa_liveness.py"


@pytest.fixture(scope="module")
def liveness():
    spec = importlib.util.spec_from_file_location("npa_liveness", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_effective_rank_by_hand(liveness):
    torch.manual_seed(0)
    line = torch.randn(10, 1) * torch.randn(1, 6)  # every row on one direction: rank 1
    assert liveness.effective_rank(line) == pytest.approx(1.0, abs=1e-4)
    # e1..e4 twice: centring removes the all-ones direction, leaving 3 equal singular values
    simplex = torch.eye(4).repeat(2, 1)
    assert liveness.effective_rank(simplex) == pytest.approx(3.0, abs=1e-4)


def test_prints_both_reductions_per_branch(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), "-m", "pcfrl", "-t", "synth-fer", "--preset", "smoke",
                          "--cache-dir", str(tmp_path)], capture_output=True, text=True, check=True).stdout
    for branch in ("pose:", "face:"):
        assert branch in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("sum ", "mean "))]
    assert [r[0] for r in rows] == ["sum", "mean", "sum", "mean"]
    for r in rows:  # four shares in [0, 1], non-increasing in T, then the median best PA
        shares = [float(v) for v in r[1:5]]
        assert all(0 <= v <= 1 for v in shares) and shares == sorted(shares, reverse=True)

"""benchmarks/bench_step_profile.py: ops (forward and backward) go to the right region, FLOPs add up."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pcfrl_bench.evaluation.complexity import count_flops

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_step_profile.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_step_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_step_profile"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["bench_step_profile"]


def test_backward_ops_go_to_the_region_that_made_their_forward(bench):
    torch.manual_seed(0)
    first, second = nn.Linear(4, 6), nn.Linear(6, 3)
    x = torch.rand(5, 4)  # needs no gradient: the first layer's backward computes its weight gradient only
    profiler = bench.RegionProfiler()
    with profiler:
        with profiler.region("a"):
            h = first(x)
        with profiler.region("b"):
            y = second(h)
        y.sum().backward()
    flops = dict(profiler.flops)
    assert flops[("forward", "a")] == 2 * 5 * 4 * 6 and flops[("forward", "b")] == 2 * 5 * 6 * 3
    assert flops[("backward", "a")] == 2 * 5 * 4 * 6  # weight gradient
    assert flops[("backward", "b")] == 2 * (2 * 5 * 6 * 3)  # weight and input gradients
    assert all(t >= 0 for t in profiler.time_ns.values()) and ("backward", "b") in profiler.time_ns


def test_pcfrl_step_regions_cover_the_step_and_its_flops(bench):
    result = bench.profile_method("pcfrl", "synth-fer", "smoke", [], repeats=1)
    ms, flops = result["ms"], result["flops"]
    for region in ("trunk", "subnets", "heads", "decoder", "losses", "calibration", "optimizer"):
        assert ms[("forward", region)] > 0
    for region in ("trunk", "subnets", "heads", "decoder"):
        assert ms[("backward", region)] > 0 and flops[("backward", region)] > flops[("forward", region)] > 0
    assert ("backward", "views") not in ms  # the augmentations run without gradient
    assert result["channels_last"]  # profiled as the training loop runs it

    step = bench.build_step("pcfrl", "synth-fer", "smoke", [])
    torch.manual_seed(0)
    step.run()
    assert sum(flops.values()) == count_flops(step.run)  # every counted op of the step has a region
    table = bench.table("pcfrl", result)
    assert "| decoder |" in table and "**step**" in table

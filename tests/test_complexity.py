"""Paper Table 10: complexity measurement, its records and the rendered table."""

import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from pcfrl_bench.cli import main
from pcfrl_bench.evaluation.complexity import Complexity, count_flops, measure_complexity
from pcfrl_bench.models.pcl_parts import count_parameters
from pcfrl_bench.reporting.paper import default_paper_dir
from pcfrl_bench.reporting.tables import render_all_tables
from pcfrl_bench.runner import build_method, resolve


def test_count_flops_matches_hand_count():
    torch.manual_seed(0)
    linear, conv = nn.Linear(4, 3), nn.Conv2d(2, 5, kernel_size=3, bias=False)
    assert count_flops(lambda: linear(torch.rand(5, 4))) == 2 * 5 * 4 * 3
    # 6x6 input, 3x3 kernel, no padding -> 4x4 outputs, each 2 * 9 * 2 multiply-adds per output channel
    assert count_flops(lambda: conv(torch.rand(1, 2, 6, 6))) == 2 * (4 * 4) * 5 * (2 * 3 * 3)


def test_complexity_metrics_are_per_image_and_median():
    c = Complexity(step_times_s=(1.0, 3.0, 2.0), forward_flops=8_000_000_000, train_flops=24_000_000_000,
                   encoder_flops_per_image=500_000_000, params=2_500_000, encoder_params=1_000_000, batch_size=4)
    m = c.metrics()
    assert m["time_s"] == 2.0 and m["time_min_s"] == 1.0
    assert m["flops_g"] == pytest.approx(2.0) and m["macs_g"] == pytest.approx(1.0)
    assert m["params_m"] == 2.5 and m["encoder_params_m"] == 1.0
    assert m["train_gflops_per_step"] == 24.0 and m["encoder_gflops_per_image"] == 0.5
    assert m["train_gflops_per_s"] == pytest.approx(12.0)  # 24 GFLOP per step at the median 2 s


def test_measure_complexity_trains_and_counts():
    resolved = {name: resolve(name, "synth-fer", "smoke") for name in ("pcl", "pcfrl")}
    methods = {name: build_method(r) for name, r in resolved.items()}
    before = {name: [p.detach().clone() for p in m.parameters()] for name, m in methods.items()}
    pretrain = {name: r.config.pretrain for name, r in resolved.items()}
    size = resolved["pcl"].config.data.image_size
    out = measure_complexity(methods, pretrain, batch_size=4, image_size=size, device=torch.device("cpu"), repeats=2)
    for name, c in out.items():
        assert len(c.step_times_s) == 2 and all(t > 0 for t in c.step_times_s)
        assert c.params == count_parameters(methods[name]) and c.encoder_params < c.params
        assert 2 * c.forward_flops < c.train_flops  # backward costs about twice the forward pass
        assert 0 < c.encoder_flops_per_image < c.forward_flops / 4  # per image, and only the trunk
        changed = [not torch.equal(a, b) for a, b in zip(before[name], methods[name].parameters())]
        assert any(changed)  # real optimiser steps were taken
    assert out["pcl"].params == out["pcfrl"].params  # PCFRL adds no parameters (paper Table 10)
    # measured in the memory format the pretraining uses (pretrain.channels_last, on by default)
    assert methods["pcl"].backbone.conv1[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert out["pcfrl"].forward_flops >= out["pcl"].forward_flops  # calibration adds score computations
    with pytest.raises(ValueError):
        measure_complexity(methods, pretrain, batch_size=4, image_size=size, device=torch.device("cpu"), repeats=0)


def test_complexity_command_fills_table_10(tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["--threads", "1", "complexity", "--task", "synth-fer", "--preset", "smoke",
                                       "--repeats", "1", "--out", str(out), "--no-progress"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "complexity" / "pcfrl" / "smoke-seed0.json").read_text())
    assert record["task"] == "complexity" and record["domain_task"] == "synth-fer" and record["batch_size"] == 16
    assert set(record["metrics"]) >= {"time_s", "flops_g", "macs_g", "params_m"} and record["torch_threads"] == 1
    render_all_tables(default_paper_dir(), out, tmp_path / "tables", preset="smoke")
    table = (tmp_path / "tables" / "tables" / "table10.md").read_text(encoding="utf-8")
    params = f"{record['metrics']['params_m']:.1f}** (n=1)"  # same parameters: both rows bold
    assert table.count(params) == 2 and "| **16.8** |" in table  # reproduced beside the paper's value
    assert "measured on: cpu (1 thread)" in table and "median seconds per training step" in table
    render_all_tables(default_paper_dir(), out, tmp_path / "tables", preset="smoke", variant="synthetic")
    assert params in (tmp_path / "tables" / "tables" / "synthetic" / "table10.md").read_text(encoding="utf-8")



def test_complexity_command_rejects_bad_input():
    zero = CliRunner().invoke(main, ["complexity", "--repeats", "0"])
    assert zero.exit_code == 2 and "--repeats" in zero.output
    typo = CliRunner().invoke(main, ["complexity", "--methods", "pcl,pcfr", "--task", "synth-fer", "--preset", "smoke"])
    assert typo.exit_code == 2 and "Did you mean 'pcfrl'" in typo.output

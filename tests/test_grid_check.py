import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.grid import Cell, Expectation, compare, grid_cells, stored_record
from pcfrl_bench.io import atomic_write_json
from pcfrl_bench.results import ResultRecord
from pcfrl_bench.runner import resolve


def test_grid_cells_order_groups_each_method_and_seed():
    cells = grid_cells(["a", "b"], ["t1", "t2"], [0, 1], "smoke")
    assert [(c.method, c.seed, c.task) for c in cells[:4]] == [("a", 0, "t1"), ("a", 0, "t2"), ("a", 1, "t1"),
                                                               ("a", 1, "t2")]
    assert len(cells) == 8


def test_sweep_records_named_before_config_hashes_still_count_as_stored(tmp_path):
    """`make reference` skips sweep points stored under the plain name (before records were named by their
    config hash) when their config matches; new ones carry the hash."""
    point = ("pretrain.epochs=1",)
    variant = resolve("simclr", "digits", "smoke", 0, overrides=point).config.result_hash()
    legacy = {"method": "simclr", "task": "digits", "preset": "smoke", "seed": 0, "metric": "accuracy",
              "metrics": {"accuracy": 1.0}, "config": {}, "config_hash": variant}
    plain = atomic_write_json(tmp_path / "digits" / "simclr" / "smoke-seed0.json", legacy)
    assert stored_record(Cell("simclr", "digits", "smoke", 0, point), tmp_path).path == plain
    assert stored_record(Cell("simclr", "digits", "smoke", 0), tmp_path) is None  # the registry cell: other hash
    plain.unlink()
    named = atomic_write_json(tmp_path / "digits" / "simclr" / f"smoke-seed0-{variant[:8]}.json", legacy)
    assert stored_record(Cell("simclr", "digits", "smoke", 0, point), tmp_path).path == named


def test_compare_within_and_outside_tolerance():
    exp = Expectation("m", "t", "smoke", 0, "accuracy", 50.0, 1.0)
    def rec(metrics: dict) -> ResultRecord:
        return ResultRecord("m", "t", "smoke", 0, "accuracy", metrics, {}, "h")

    assert compare(exp, rec({"accuracy": 50.9})).passed
    assert not compare(exp, rec({"accuracy": 51.2})).passed
    missing = compare(exp, rec({}))
    assert not missing.passed and "missing" in missing.note


def test_grid_skips_stored_cells_then_check_passes_and_fails_on_perturbed_value(tmp_path):
    runner = CliRunner()
    out = tmp_path / "runs"
    args = ["grid", "--methods", "simclr", "--tasks", "digits", "--seeds", "0,1", "--preset", "smoke",
            "--out", str(out)]
    first = runner.invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0 and "2 cells run, 0 already stored" in first.output
    again = runner.invoke(main, args, catch_exceptions=False)
    assert "0 cells run, 2 already stored" in again.output

    record = json.loads((out / "digits" / "simclr" / "smoke-seed1.json").read_text())
    value = record["metrics"]["accuracy"]
    expected = tmp_path / "expected.yaml"
    cell = {"method": "simclr", "task": "digits", "preset": "smoke", "seed": 1, "metric": "accuracy",
            "value": value, "tolerance": 0.5, "subsets": ["ci"], "threads": 1}
    expected.write_text(yaml.safe_dump({"cells": [cell]}))
    ok = runner.invoke(main, ["check", "--expected", str(expected), "--subset", "ci"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "1 passed, 0 failed" in ok.output

    expected.write_text(yaml.safe_dump({"cells": [{**cell, "value": value + 5.0}]}))
    bad = runner.invoke(main, ["check", "--expected", str(expected)], catch_exceptions=False)
    assert bad.exit_code == 1 and "FAIL" in bad.output and "0 passed, 1 failed" in bad.output

    updated = runner.invoke(main, ["check", "--expected", str(expected), "--update"], catch_exceptions=False)
    assert updated.exit_code == 0
    assert yaml.safe_load(expected.read_text())["cells"][0]["value"] == pytest.approx(value, abs=1e-4)


def test_malformed_expected_file_names_the_file(tmp_path):
    expected = tmp_path / "expected.yaml"
    expected.write_text("cells:\n  - {method: simclr}\n")
    result = CliRunner().invoke(main, ["check", "--expected", str(expected)])
    assert result.exit_code == 2 and "expected.yaml" in result.output and "entry 1" in result.output

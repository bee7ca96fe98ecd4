import json

import pytest
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.runner import default_task

SYNTH_TASKS = {"synth-fer": "accuracy", "synth-posecls": "accuracy", "synth-hpe": "mae", "synth-au": "f1",
               "synth-fr": "accuracy"}


def test_every_synthetic_task_runs_through_the_cli_and_shares_one_pretraining(tmp_path):
    runner = CliRunner()
    out = tmp_path / "runs"
    hashes = set()
    for i, (task, metric) in enumerate(SYNTH_TASKS.items()):
        result = runner.invoke(main, ["run", "-m", "simclr", "-t", task, "--preset", "smoke", "--no-progress",
                                      "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert ("Reusing cached pretraining checkpoint" in result.output) == (i > 0)
        record = json.loads((out / task / "simclr" / "smoke-seed0.json").read_text())
        assert record["metric"] == metric and metric in record["metrics"]
        hashes.add(record["pretrain_hash"])
    assert len(hashes) == 1
    hpe = json.loads((out / "synth-hpe" / "simclr" / "smoke-seed0.json").read_text())
    assert {"mae_yaw", "mae_pitch", "mae_roll"} <= set(hpe["metrics"])
    fr = json.loads((out / "synth-fr" / "simclr" / "smoke-seed0.json").read_text())
    assert fr["counts"]["folds"] == 10 and fr["counts"]["images"] == 2 * fr["counts"]["pairs"]


def test_synthetic_splits_are_deterministic_and_disjoint_in_identity(tmp_path):
    task = default_task("synth-fer", tmp_path)
    a = task.rendered("train", 32)
    b = default_task("synth-fer", tmp_path).rendered("train", 32)
    assert (a["images"] == b["images"]).all()
    test = task.rendered("test", 32)
    assert not set(a["identities"].tolist()) & set(test["identities"].tolist())


def test_synth_cli_preview_and_export_then_data_check(tmp_path):
    runner = CliRunner()
    png = tmp_path / "grid.png"
    assert runner.invoke(main, ["synth", "preview", "--png", str(png), "--identities", "2"]).exit_code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = tmp_path / "data"
    result = runner.invoke(main, ["synth", "export", "--like", "cplfw", "--dataset-dir", str(root / "CPLFW"), "--n", "40"])
    assert result.exit_code == 0, result.output
    check = runner.invoke(main, ["data", "check", "--task", "cplfw", "--data-root", str(root), "--json"])
    assert check.exit_code == 0, check.output
    report = json.loads(check.output)
    assert report["splits"]["test"]["pairs"] == 40


@pytest.mark.parametrize("like", ["lfw", "fer2013"])
def test_export_unknown_layout_is_rejected(tmp_path, like):
    bad = CliRunner().invoke(main, ["synth", "export", "--like", like + "x", "--dataset-dir", str(tmp_path)])
    assert bad.exit_code == 2 and f"Did you mean '{like}'" in bad.output

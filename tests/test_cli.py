import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.reporting.tables import aggregate_records
from pcfrl_bench.results import ResultRecord, frame, write_record
from pcfrl_bench.resolution import registry_result_hash, resolve

SMOKE = ["--method", "simclr", "--task", "digits", "--preset", "smoke", "--no-progress"]


@pytest.fixture
def cli(tmp_path):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)
    return invoke


@pytest.mark.parametrize("command", [[], ["run"], ["list"], ["config"], ["results"]])
def test_help_explains_itself_with_examples(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_list_table_and_json(cli):
    table = cli("list")
    assert table.exit_code == 0 and "simclr" in table.output and "digits" in table.output
    data = json.loads(cli("list", "--json").output)
    assert {m["name"] for m in data["methods"]} >= {"simclr"}
    digits = next(t for t in data["tasks"] if t["name"] == "digits")
    assert digits["available"] is True and digits["metric"] == "accuracy"


def test_smoke_run_writes_record_then_reuses_checkpoint(cli, tmp_path):
    out = tmp_path / "runs"
    first = cli("run", *SMOKE, "--out", str(out))
    assert first.exit_code == 0, first.output
    path = out / "digits" / "simclr" / "smoke-seed0.json"
    record = json.loads(path.read_text())
    for key in ("metrics", "best_over_epochs", "best_epoch", "config", "config_hash", "pretrain_hash", "git",
                "packages", "device", "wall_time_s", "seed", "preset", "metric", "counts"):
        assert key in record, key
    assert 0 <= record["metrics"]["accuracy"] <= 100
    assert record["best_over_epochs"]["accuracy"] >= record["metrics"]["accuracy"]
    assert record["reused_checkpoint"] is False and record["wall_time_s"]["pretrain"] > 0
    assert record["config"]["run"]["preset"] == "smoke" and record["counts"] == {"train": 200, "test": 100}

    second = cli("run", *SMOKE, "--out", str(out))
    assert "Reusing cached pretraining checkpoint" in second.output
    again = json.loads(path.read_text())
    assert again["reused_checkpoint"] is True and again["pretrain_hash"] == record["pretrain_hash"]
    assert again["metrics"] == record["metrics"]  # same checkpoint, cached features, same probe seed

    changed = cli("run", *SMOKE, "--out", str(out), "--set", "eval.probe.lr=0.05")
    assert "Reusing cached pretraining checkpoint" in changed.output  # eval settings do not retrain
    # tables count a record only when it was made with the registry's config (not with --set overrides)
    assert record["config_hash"] == registry_result_hash("simclr", "digits", "smoke", 0)
    assert json.loads(path.read_text())["config_hash"] == record["config_hash"]  # the registry record stays
    variant_path = Path(changed.output.split("record: ")[1].split()[0])
    variant = json.loads(variant_path.read_text())
    assert variant_path.name == f"smoke-seed0-{variant['config_hash'][:8]}.json" != path.name
    assert variant["registry_config"] is False and variant["overrides"] == ["eval.probe.lr=0.05"]
    assert registry_result_hash("simclr", "complexity", "smoke", 0) is None

    assert cli("results", "--out", str(out)).exit_code == 2  # renamed: inputs are --records
    rows = list(csv.DictReader(io.StringIO(cli("results", "--records", str(out), "--csv").output)))
    assert [(r["registry"], r["overrides"]) for r in sorted(rows, key=lambda r: r["registry"])] == [
        ("False", "eval.probe.lr=0.05"), ("True", "")]
    assert {r["config_hash"] for r in rows} == {record["config_hash"][:8], variant["config_hash"][:8]}
    only = list(csv.DictReader(io.StringIO(cli("results", "--records", str(out), "--csv", "--registry-only").output)))
    assert [r["path"] for r in only] == [str(path)]
    table = frame(out, registry_only=False)
    assert set(table["path"]) == {str(path), str(variant_path)}
    assert set(frame(out)["path"]) == {str(path)} and set(frame(out)["config_hash"]) == {record["config_hash"]}


def test_frame_keeps_registry_records_and_flags_the_others(tmp_path):
    """A registry record, a --set variant and a record of an older config of the same cell: frame() keeps the
    first only (what the tables count), frame(registry_only=False) flags each."""
    registry = registry_result_hash("simclr", "digits", "smoke", 0)
    variant = resolve("simclr", "digits", "smoke", 0, overrides=["pretrain.epochs=1"]).config.result_hash()
    for folder, value, config_hash, is_registry in ((".", 60.0, registry, True), (".", 70.0, variant, False),
                                                    ("older", 80.0, "0ld", True)):
        write_record(tmp_path / folder, ResultRecord("simclr", "digits", "smoke", 0, "accuracy", {"accuracy": value},
                                                     {}, config_hash, registry_config=is_registry))
    assert len(list(tmp_path.rglob("*.json"))) == 3  # the variant did not replace the registry record
    flagged = frame(tmp_path, registry_only=False)  # by the flag each record stored when it was written
    assert sorted(zip(flagged["value"], flagged["registry"])) == [(60.0, True), (70.0, False), (80.0, True)]
    everything = frame(tmp_path, registry_only=False, registry_hash=registry_result_hash)  # against today's registry
    assert sorted(zip(everything["value"], everything["registry"])) == [(60.0, True), (70.0, False), (80.0, False)]
    kept = frame(tmp_path, registry_hash=registry_result_hash)
    assert list(kept["value"]) == [60.0] and list(kept["config_hash"]) == [registry]
    agg = aggregate_records(kept, "smoke")
    assert list(agg["mean"]) == [60.0] and list(agg["n"]) == [1]


def test_bad_input_gives_one_clear_error(cli):
    result = CliRunner().invoke(main, ["run", "-m", "simclrr", "-t", "digits"])
    assert result.exit_code == 2
    assert "Unknown method 'simclrr'" in result.output and "Did you mean 'simclr'" in result.output
    result = CliRunner().invoke(main, ["run", "-m", "simclr", "-t", "digits", "--set", "pretrain.epoch=2"])
    assert result.exit_code == 2 and "pretrain.epochs" in result.output
    result = CliRunner().invoke(main, ["run", "-m", "simclr", "-t", "digits", "--device", "cuda:7"],
                                env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.exit_code == 2


def test_config_prints_resolved_yaml(cli):
    result = cli("config", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--set", "pretrain.epochs=9")
    assert "epochs: 9" in result.output and "backbone: timm:test_resnet" in result.output

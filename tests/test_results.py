import json
import threading
from pathlib import Path

import pytest

from pcfrl_bench.io import atomic_write_json
from pcfrl_bench.results import (RECORD_VERSION, UPGRADES, ResultRecord, load_records, read_record, record_path,
                                 write_record)


def record(seed, value, **more):
    return ResultRecord.from_json({"method": "simclr", "task": "digits", "preset": "smoke", "seed": seed,
                                   "metric": "accuracy", "metrics": {"accuracy": value}, "config": {},
                                   "config_hash": "x", **more})


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "r.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_concurrent_writers_never_corrupt_the_record(tmp_path):
    big = {"warnings": ["x" * 200_000]}

    def writer(i):
        for _ in range(20):
            write_record(tmp_path, record(0, float(i), **big))
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads(record_path(tmp_path, "simclr", "digits", "smoke", 0).read_text())
    assert data["metrics"]["accuracy"] in {0.0, 1.0, 2.0, 3.0} and len(data["warnings"][0]) == 200_000
    assert len(list(tmp_path.rglob("*.tmp"))) == 0


def test_corrupt_record_is_reported_and_others_load(tmp_path):
    write_record(tmp_path, record(0, 90.0))
    write_record(tmp_path, record(1, 91.0))
    bad = record_path(tmp_path, "simclr", "digits", "smoke", 2)
    bad.write_text('{"method": "simclr", "truncated')
    other = tmp_path / "digits" / "notes.json"
    other.write_text("[1, 2]")
    records, problems = load_records(tmp_path)
    assert sorted(r.seed for r in records) == [0, 1]
    assert any(str(bad) in p and "unreadable" in p for p in problems)
    assert any(str(other) in p and "not a result record" in p for p in problems)


def test_analysis_folders_are_not_records(tmp_path):
    write_record(tmp_path, record(0, 90.0))
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "pcl-synth-fer-quick-seed0.json").write_text('{"kind": "calibration-analysis"}')
    records, problems = load_records(tmp_path)
    assert len(records) == 1 and problems == []


def test_committed_records_load_and_round_trip_unchanged():
    """Records written by earlier versions (results/reference) load, and writing them back keeps every field."""
    root = Path(__file__).resolve().parents[1] / "results" / "reference"
    records, problems = load_records(root)
    assert records and problems == []
    for rec in records:
        stored = json.loads(rec.path.read_text())
        assert {k: rec.to_json()[k] for k in stored} == stored
    complexity = [r for r in records if r.task == "complexity"]
    assert complexity and all(r.step_times_s and r.batch_size for r in complexity)
    assert all(r.schema_version == RECORD_VERSION for r in records)  # upgraded when read, unchanged on disk


def test_create_fills_config_and_environment_and_refuses_an_unknown_field(tmp_path):
    from pcfrl_bench.runner import resolve

    cfg = resolve("simclr", "digits", "smoke").config
    fields = {"method": "simclr", "task": "digits", "preset": "smoke", "seed": 0, "metric": "accuracy",
              "metrics": {"accuracy": 1.0}}
    rec = ResultRecord.create(cfg, **fields, counts={"train": 3})
    assert rec.config_hash == cfg.result_hash() and rec.config == cfg.to_dict() and rec.counts == {"train": 3}
    assert rec.created and rec.python and "torch" in rec.packages and rec.torch_threads >= 1
    path = write_record(tmp_path, rec)
    stored = json.loads(path.read_text())
    assert rec.path == path and stored["counts"] == {"train": 3} and stored["schema_version"] == RECORD_VERSION
    again = read_record(path)
    assert again == rec and again.headline() == 1.0
    with pytest.raises(TypeError, match="count"):
        ResultRecord.create(cfg, **fields, count={"train": 3})  # misspelled: never stored silently


def test_reading_names_the_file_and_the_unknown_or_missing_field(tmp_path):
    path = write_record(tmp_path, record(0, 90.0))
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "wall_time": {}}))
    with pytest.raises(ValueError, match=f"{path}: unknown field 'wall_time'"):
        read_record(path)
    path.write_text(json.dumps({k: v for k, v in stored.items() if k != "counts"}))
    with pytest.raises(ValueError, match=f"{path}: .*missing field 'counts'"):
        read_record(path)
    path.write_text(json.dumps({**stored, "schema_version": RECORD_VERSION + 1}))
    with pytest.raises(ValueError, match=f"{path}: result record of schema_version {RECORD_VERSION + 1}"):
        read_record(path)


def test_a_version_1_record_is_read_through_its_upgrade(tmp_path):
    old = {"method": "simclr", "task": "digits", "preset": "smoke", "seed": 0, "metric": "accuracy",
           "metrics": {"accuracy": 90.0}, "config": {}, "config_hash": "x", "_path": "somewhere"}
    assert "schema_version" not in old
    upgraded = UPGRADES[1](old)
    assert upgraded["schema_version"] == 2 and upgraded["registry_config"] is True and upgraded["overrides"] == []
    assert "_path" not in upgraded and upgraded["step_times_s"] is None
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    rec = read_record(path)
    assert rec.schema_version == RECORD_VERSION and rec.headline() == 90.0 and rec.registry_config


def test_results_fit_80_columns_without_cutting_a_number(tmp_path):
    from click.testing import CliRunner

    from pcfrl_bench.cli import main

    long = ["method.calib_face.alpha=20", "method.calib_pose.alpha=20", "eval.probe.epochs=300"]
    write_record(tmp_path, record(0, 12345.678901, best_over_epochs={"accuracy": 98765.4321}))
    write_record(tmp_path, record(1, 91.0, registry_config=False, overrides=long, config_hash="abcdef1234"))
    runner = CliRunner()
    narrow = runner.invoke(main, ["results", "--records", str(tmp_path)], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in narrow.output
    assert "12345.68" in narrow.output and "98765.43" in narrow.output and "91.00" in narrow.output
    assert "Left out to fit 80 columns: config, overrides" in narrow.output and "--wide" in narrow.output
    assert "calib_face" not in narrow.output
    wide = runner.invoke(main, ["results", "--records", str(tmp_path), "--wide"], env={"COLUMNS": "80"})
    assert all(o in wide.output for o in long) and "Left out" not in wide.output and "…" not in wide.output
    tiny = runner.invoke(main, ["results", "--records", str(tmp_path)], env={"COLUMNS": "40"})
    assert "12345.68" in tiny.output and "98765.43" not in tiny.output  # numbers kept whole or left out, never cut

import json
import threading

from pcfrl_bench.io import atomic_write_json
from pcfrl_bench.results import load_records, record_path, write_record


def record(seed, value):
    return {"method": "simclr", "task": "digits", "preset": "smoke", "seed": seed, "metric": "accuracy",
            "metrics": {"accuracy": value}, "config": {}, "config_hash": "x"}


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = atomic_write_json(tmp_path / "a" / "r.json", {"x": 1})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_concurrent_writers_never_corrupt_the_record(tmp_path):
    big = {"payload": "x" * 200_000}

    def writer(i):
        for _ in range(20):
            write_record(tmp_path, {**record(0, float(i)), **big})
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads(record_path(tmp_path, "simclr", "digits", "smoke", 0).read_text())
    assert data["metrics"]["accuracy"] in {0.0, 1.0, 2.0, 3.0} and len(data["payload"]) == 200_000
    assert len(list(tmp_path.rglob("*.tmp"))) == 0


def test_corrupt_record_is_reported_and_others_load(tmp_path):
    write_record(tmp_path, record(0, 90.0))
    write_record(tmp_path, record(1, 91.0))
    bad = record_path(tmp_path, "simclr", "digits", "smoke", 2)
    bad.write_text('{"method": "simclr", "truncated')
    other = tmp_path / "digits" / "notes.json"
    other.write_text("[1, 2]")
    records, problems = load_records(tmp_path)
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert any(str(bad) in p and "unreadable" in p for p in problems)
    assert any(str(other) in p and "not a result record" in p for p in problems)


def test_analysis_folders_are_not_records(tmp_path):
    write_record(tmp_path, record(0, 90.0))
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "pcl-synth-fer-quick-seed0.json").write_text('{"kind": "calibration-analysis"}')
    records, problems = load_records(tmp_path)
    assert len(records) == 1 and problems == []

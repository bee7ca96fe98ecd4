"""Where a result stands (what `make demo` ends with): numbers from records and paper tables, the sentence from rules."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.reporting.paper import load_paper_tables, load_synthetic_map
from pcfrl_bench.reporting.standing import meaning, paper_numbers, standing, standing_markdown
from pcfrl_bench.results import ResultRecord, write_record


def rec(method: str, seed: int, value: float, task: str = "synth-fer", metric: str = "accuracy",
        higher: bool = True, trivial: float = 10.0) -> ResultRecord:
    return ResultRecord.from_json({"method": method, "task": task, "preset": "demo", "seed": seed, "metric": metric,
                                   "metrics": {metric: value}, "trivial": {metric: trivial}, "config": {},
                                   "config_hash": f"{method}{seed}", "higher_is_better": higher})


def reference(tmp_path, ceiling=(70.0, 72.0, 74.0), method_values=(25.0, 27.0, 26.0), **kw):
    for seed in range(3):
        for method, values in (("raw-pixels", (30.0, 31.0, 29.0)), ("random-init", (20.0, 21.0, 22.0)),
                               ("supervised", ceiling), ("pcfrl", method_values)):
            write_record(tmp_path / "ref", rec(method, seed, values[seed], **kw))
    return tmp_path / "ref"


def place(tmp_path, run: ResultRecord, ref):
    return standing(run, ref, None, load_paper_tables(), load_synthetic_map())


def test_the_paper_numbers_of_the_tasks_a_synthetic_task_stands_in_for():
    found = paper_numbers("pcfrl", "synth-fer", "accuracy", load_paper_tables(), load_synthetic_map())
    assert [(p.table, p.task, p.value) for p in found] == [(1, "fer2013", 57.30), (1, "rafdb", 75.68)]
    assert paper_numbers("supervised", "synth-fer", "accuracy", load_paper_tables(), load_synthetic_map()) == ()


def test_rows_hold_the_floors_ceiling_and_reference_runs_with_their_spread(tmp_path):
    ref = reference(tmp_path)
    s = place(tmp_path, rec("pcfrl", 0, 25.0), ref)
    rows = {r.label: r for r in s.rows()}
    assert rows["raw pixels (floor)"].mean == pytest.approx(30.0) and rows["raw pixels (floor)"].n == 3
    assert rows["supervised (ceiling)"].std == pytest.approx(2.0)
    assert rows["this run (pcfrl, seed 0)"].position == pytest.approx((25 - 30) / (72 - 30))
    assert rows["pcfrl, reference runs"].mean == pytest.approx(26.0)
    assert rows["trivial baseline (no features)"].mean == 10.0
    text = standing_markdown(s)
    assert "| supervised (ceiling) | 72.00 | ± 2.00 (3 seeds) | 1.00 |" in text
    assert "| paper: pcfrl on rafdb (Table 1) | 75.68 |  |  |" in text
    assert "is below the best floor (raw pixels, 30.00; ceiling 72.00)" in text
    assert "it equals the reference record of seed 0 exactly" in text  # the same number as the stored seed 0
    assert "75.68 on rafdb were measured on real faces at the paper's budget" in text


def test_the_sentence_follows_the_numbers(tmp_path):
    ref = reference(tmp_path)
    above = meaning(place(tmp_path, rec("pcfrl", 5, 51.0), ref))
    assert "is above the best floor (raw pixels, 30.00) and 50% of the way to the supervised ceiling" in above
    assert "outside two standard deviations of the reference pcfrl runs (26.00 ± 1.00, 3 seeds)" in above
    inside = meaning(place(tmp_path, rec("pcfrl", 5, 27.5), ref))
    assert "within two standard deviations" in inside and "is below the best floor" in inside
    assert "beats the supervised ceiling" in meaning(place(tmp_path, rec("pcfrl", 5, 80.0), ref))


def test_a_ceiling_that_misses_the_tasks_bar_is_said(tmp_path):
    ref = reference(tmp_path, ceiling=(45.0, 45.0, 45.0))  # synth-fer's bar: trivial (10) + 40
    text = meaning(place(tmp_path, rec("pcfrl", 0, 25.0), ref))
    assert "the ceiling misses this task's bar 'supervised >= trivial + 40' at this preset" in text


def test_lower_is_better_metrics(tmp_path):
    kw = {"task": "synth-hpe", "metric": "mae", "higher": False, "trivial": 25.0}
    ref = reference(tmp_path, ceiling=(6.0, 6.0, 6.0), method_values=(21.0, 22.0, 23.0), **kw)
    for method, value in (("raw-pixels", 19.0), ("random-init", 21.0)):
        for seed in range(3):
            write_record(ref, rec(method, seed, value, **kw))
    s = place(tmp_path, rec("pcfrl", 7, 12.5, **kw), ref)
    assert s.bounds.floor == 19.0 and s.rows()[0].position == pytest.approx((12.5 - 19) / (6 - 19))
    assert "is above the best floor (raw pixels, 19.00) and 50% of the way" in meaning(s)


def test_no_bounds_no_table_and_the_cli_says_so(tmp_path):
    write_record(tmp_path / "ref", rec("pcfrl", 1, 20.0))
    assert place(tmp_path, rec("pcfrl", 0, 20.0), tmp_path / "ref") is None
    path = write_record(tmp_path / "runs", rec("pcfrl", 0, 20.0))
    out = CliRunner().invoke(main, ["standing", str(path), "--reference", str(tmp_path / "ref")])
    assert out.exit_code == 0 and "No floor or ceiling of synth-fer at preset demo is stored" in out.output

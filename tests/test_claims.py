"""Claims statistics and the floor/ceiling table on hand-built records (no training)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from pcfrl_bench.cli import main
from pcfrl_bench.reporting.claims import (
    CLAIMS, FAILS, HOLDS, INCONCLUSIVE, confidence_interval, evaluate_claims, load_analyses, replace_between_markers,
    verdict,
)
from pcfrl_bench.reporting.instrument import bounds_frame, instrument_reading, task_bounds
from pcfrl_bench.reporting.tables import aggregate_records, records_frame
from pcfrl_bench.results import ResultRecord, write_record


def rec(method, task, seed, value, metric="accuracy", trivial=None, higher=True, **extra):
    r = {"method": method, "task": task, "preset": "quick", "seed": seed, "metric": metric, "higher_is_better": higher,
         "metrics": {metric: value}, "best_over_epochs": {metric: value}, "config": {}, "config_hash": "x",
         "created": f"2026-01-01T00:00:0{seed}"}
    if trivial is not None:
        r["trivial"] = {metric: trivial}
    r.update(extra)
    return ResultRecord.from_json(r)


def test_confidence_interval_by_hand():
    mean, low, high = confidence_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (mean, low, high) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert math.isnan(confidence_interval([1.0])[1])
    assert confidence_interval([0.5, 0.5])[1:] == (0.5, 0.5)


def test_verdict_rule():
    assert verdict(0.1, 2.0, 3) == HOLDS
    assert verdict(-2.0, -0.1, 3) == FAILS
    assert verdict(-1.0, 1.0, 3) == INCONCLUSIVE
    assert verdict(0.1, 2.0, 1) == INCONCLUSIVE


def bounded_task(task, trivial, ceiling, metric="accuracy", higher=True):
    return [rec(m, task, s, v + s * 0.1, metric, trivial, higher)
            for s in range(3) for m, v in (("supervised", ceiling), ("random-init", trivial + 1), ("raw-pixels", trivial))]


def test_bounds_learnability_and_position():
    records = bounded_task("synth-fer", 14.3, 60.0) + bounded_task("synth-hpe", 25.0, 13.0, "mae", False)
    agg = aggregate_records(records_frame(records), "quick")
    fer = task_bounds(agg, "synth-fer", "accuracy", True)
    assert fer.learnable and fer.floor == pytest.approx(15.4) and fer.ceiling == pytest.approx(60.1)
    assert fer.position(37.75) == pytest.approx(0.5)
    hpe = task_bounds(agg, "synth-hpe", "mae", False)
    assert hpe.learnable is False  # 13.1 > 0.5 * 25
    assert hpe.floor == pytest.approx(25.0)  # the lower MAE of the floors (trivial 25, raw 25.1, random 26.1)


def test_claims_pair_by_seed_and_respect_the_instrument():
    records = bounded_task("synth-posecls", 6.7, 90.0) + bounded_task("synth-hpe", 25.0, 13.0, "mae", False)
    for s, (pcl, simclr) in enumerate([(30.0, 20.0), (32.0, 21.0), (29.0, 20.5)]):
        records += [rec("pcl", "synth-posecls", s, pcl), rec("simclr", "synth-posecls", s, simclr)]
        records += [rec("pcl", "synth-hpe", s, 15.0, "mae", higher=False),
                    rec("simclr", "synth-hpe", s, 20.0, "mae", higher=False)]
    agg = aggregate_records(records_frame(records), "quick")
    out = {(o.comparison.method, o.comparison.task): o for o in evaluate_claims(records, agg, "quick", CLAIMS[:1])}
    pose = out[("pcl", "synth-posecls")]
    assert pose.n == 3 and pose.effect == pytest.approx((10 + 11 + 8.5) / 3) and pose.verdict == HOLDS
    hpe = out[("pcl", "synth-hpe")]
    assert hpe.effect == pytest.approx(5.0)  # oriented: baseline MAE - method MAE
    assert hpe.verdict == INCONCLUSIVE and "not valid" in hpe.reason  # its ceiling misses the requirement
    assert out[("pcfrl", "synth-fr")].verdict == INCONCLUSIVE and out[("pcfrl", "synth-fr")].n == 0


def test_cost_claim_pairs_step_times():
    times = {"pcl": [1.0, 1.0, 1.0, 1.0], "pcfrl": [1.02, 1.03, 1.01, 1.02]}
    records = [rec(m, "complexity", 0, t[0], "time_s", higher=False, step_times_s=t) for m, t in times.items()]
    c5 = [c for c in CLAIMS if c.key == "C5"]
    (o,) = evaluate_claims(records, aggregate_records(records_frame(records), "quick"), "quick", c5)
    assert o.effect == pytest.approx(1.02) and o.verdict == HOLDS


def analysis(seed, face, pose, method="pcfrl", overrides=()):
    """An analysis summary as `pcfrl-bench analyze` writes it: (npa, cosine) top-1 precision per branch."""
    return {"kind": "calibration-analysis", "method": method, "task": "synth-fer", "preset": "quick", "seed": seed,
            "overrides": list(overrides),
            "branches": {b: {"npa": {"share_best_candidate_true": v[0]}, "cosine": {"share_best_candidate_true": v[1]}}
                         for b, v in (("face", face), ("pose", pose))}}


def test_npa_precision_claim_pairs_npa_and_cosine_of_each_checkpoint(tmp_path):
    folder = tmp_path / "records" / "analysis"
    folder.mkdir(parents=True)
    found = [analysis(0, (0.30, 0.20), (0.10, 0.15)), analysis(1, (0.40, 0.28), (0.12, 0.20)),
             analysis(2, (0.38, 0.30), (0.20, 0.10)),
             analysis(3, (0.9, 0.0), (0.9, 0.0), overrides=["method.calib_face.alpha=5"]),  # not the registry config
             analysis(4, (0.9, 0.0), (0.9, 0.0), method="pcl")]
    for a in found:
        (folder / f"{a['method']}-{a['seed']}{len(a['overrides'])}.json").write_text(json.dumps(a))
    (folder / "broken.json").write_text("{")
    analyses, problems = load_analyses(tmp_path / "records")
    assert len(analyses) == 5 and len(problems) == 1 and "broken.json" in problems[0]
    c2 = [c for c in CLAIMS if c.key == "C2"]
    out = {o.comparison.metric: o for o in evaluate_claims([], None, "quick", c2, analyses)}
    face, pose = out["analysis:face"], out["analysis:pose"]
    assert face.n == 3 and face.effect == pytest.approx(0.10)  # paired differences 0.10, 0.12, 0.08
    assert face.method_mean == pytest.approx(1.08 / 3) and face.baseline_mean == pytest.approx(0.26)
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, 2) * sd(0.10, 0.12, 0.08) / sqrt(3)
    assert (face.low, face.high) == pytest.approx((0.10 - half, 0.10 + half)) and face.verdict == HOLDS
    assert pose.effect == pytest.approx((-0.05 - 0.08 + 0.10) / 3) and pose.verdict == INCONCLUSIVE


def test_readme_section_is_replaced_between_markers():
    text = "a\n<!-- claims:start -->\nold\n<!-- claims:end -->\nb\n"
    assert replace_between_markers(text, "new\n") == "a\n<!-- claims:start -->\nnew\n<!-- claims:end -->\nb\n"
    with pytest.raises(ValueError):
        replace_between_markers("no markers", "x")


def test_claims_and_instrument_commands_write_and_print(tmp_path):
    root = tmp_path / "records"
    for r in bounded_task("synth-fer", 14.3, 60.0):
        write_record(root, r)
    out = tmp_path / "CLAIMS.md"
    result = CliRunner().invoke(main, ["claims", "--records", str(root), "--report", str(out), "--any-config"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "## C1" in text and "## Floors and ceilings" in text and "synth-fer (accuracy ↑)" in text
    result = CliRunner().invoke(main, ["instrument", "--records", str(root), "--any-config"])
    assert result.exit_code == 0 and "60.10" in result.output and "| yes |" in result.output


def test_instrument_reading_is_generated_from_the_table():
    records = bounded_task("synth-fer", 14.3, 60.0) + bounded_task("synth-hpe", 25.0, 13.0, "mae", False)
    for s in range(3):  # simclr above every floor of synth-fer, pcl below random-init
        records += [rec("simclr", "synth-fer", s, 20.0), rec("pcl", "synth-fer", s, 15.0)]
    agg = aggregate_records(records_frame(records), "quick")
    frame = bounds_frame(agg, {"synth-fer": ("accuracy", True), "synth-hpe": ("mae", False)}, ("simclr", "pcl"))
    lines = instrument_reading(frame, ("simclr", "pcl"))
    assert lines[0] == "The instrument is valid (the ceiling clears its bar) on synth-fer."
    assert "**not valid** on synth-hpe: supervised 13.10" in lines[1]
    # best floor of synth-fer: random-init 15.4 (trivial 14.3, raw pixels 14.4); pcl 15.0 is below it
    assert lines[2] == ("Methods above the best floor, per valid task (means): synth-fer: simclr 20.00 "
                        "(best floor random-init 15.40).")
    assert lines[3].endswith("synth-fer: simclr 20.00 (random-init 15.40).")

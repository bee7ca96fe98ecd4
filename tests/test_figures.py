"""Analysis of checkpoints (precision / recall of calibrated pairs) and the figures."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from pcfrl_bench.analysis import analyze_checkpoint, mask_quality, max_scores, quality_table, write_analysis
from pcfrl_bench.methods.calibrated import Branch, CalibrationParams, calibration_logs, pair_truth, precision_from_means
from pcfrl_bench.reporting.figures import (
    SeriesPoint, calibration_series, config_labels, find_sweeps, pcl_pcfrl_pairs, render_all_figures, yaw_bins,
)
from pcfrl_bench.results import ResultRecord
from pcfrl_bench.runner import RunPaths

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# 3 images x 2 views, image-major: views 0,1,2 then 3,4,5 (view v shows image v % 3)
GROUPS = torch.tensor([0, 1, 2, 0, 1, 2])


def test_truth_definitions_by_hand() -> None:
    ident, emo = torch.tensor([1, 1, 2, 3]), torch.tensor([0, 5, 5, 6])
    t = pair_truth("face", {"identity": ident, "emotion": emo})
    assert t[0, 1] and t[1, 2] and not t[0, 2] and not t[0, 3] and not t[2, 3]  # same id / same emotion / none
    yaw, pitch = torch.tensor([0.0, 10.0, 20.0, 0.0]), torch.tensor([0.0, 14.0, 0.0, 16.0])
    p = pair_truth("pose", {"yaw": yaw, "pitch": pitch, "roll": torch.tensor([0.0, 90.0, 0.0, 0.0])})
    assert p[0, 1] and not p[0, 2] and not p[0, 3]  # |dyaw| 20 > 15; |dpitch| 16 > 15
    assert p[1, 3] and not p[2, 3]  # |dyaw| 10, |dpitch| 2 (roll is not part of it); |dyaw| 20
    assert pair_truth("pose", {"identity": ident}) is None  # no angles: no truth


def test_precision_recall_by_hand() -> None:
    truth = torch.zeros(6, 6, dtype=torch.bool)
    truth[0, 1] = truth[1, 0] = True  # images 0 and 1 are true partners (views 0/1/3/4)
    truth[0, 4] = truth[4, 0] = truth[3, 1] = truth[1, 3] = truth[3, 4] = truth[4, 3] = True
    truth[0, 3] = truth[3, 0] = True  # same image: not a candidate, must be ignored
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[0, 1] = True  # correct
    mask[1, 2] = True  # wrong
    mask[2, 0] = True  # wrong (image 2 has no true partner)
    mask[3, 4] = mask[3, 2] = True  # one correct, one wrong (a top-2 anchor)
    mask[0, 3] = True  # same image: not a candidate pair, dropped
    q = mask_quality(mask, truth, GROUPS)
    assert q["pairs"] == 5 and q["correct"] == 2 and q["precision"] == pytest.approx(2 / 5)
    # anchors with a true candidate: 0, 1, 3, 4 (image 2's views none); hits: anchors 0 and 3
    assert q["findable"] == 4 and q["hits"] == 2 and q["recall"] == pytest.approx(0.5)
    assert q["true_pairs"] == 8 and q["pair_recall"] == pytest.approx(2 / 8)
    assert q["rate"] == pytest.approx(5 / 6)
    empty = mask_quality(torch.zeros(6, 6, dtype=torch.bool), truth, GROUPS)
    assert math.isnan(empty["precision"]) and empty["recall"] == 0.0


def test_training_logs_recall_matches_analysis_definition() -> None:
    truth = torch.zeros(6, 6, dtype=torch.bool)
    truth[0, 1] = truth[1, 0] = truth[0, 3] = truth[3, 0] = True
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[0, 1] = mask[2, 4] = True
    branch = Branch("face", torch.zeros(6, 2), GROUPS, CalibrationParams(), truth)
    logs = calibration_logs("face", mask, branch)
    assert float(logs["face_cal_hits"]) == 1 and float(logs["face_cal_findable"]) == 2  # anchors 0 and 1
    means = {k: float(v) for k, v in logs.items()}
    out = precision_from_means(means, ("face",))
    assert out == {"face_cal_precision": pytest.approx(0.5), "face_cal_recall": pytest.approx(0.5),
                   "face_cal_pair_recall": pytest.approx(0.5)}
    q = mask_quality(mask, truth, GROUPS)
    assert (q["precision"], q["recall"], q["pair_recall"]) == (pytest.approx(0.5),) * 3
    no_truth = Branch("face", torch.zeros(6, 2), GROUPS, CalibrationParams())
    assert "face_cal_hits" not in calibration_logs("face", mask, no_truth)  # no ground truth: no counts


def test_quality_table_rules_and_max_scores() -> None:
    torch.manual_seed(0)
    scores = torch.randn(6, 6)
    truth = torch.ones(6, 6, dtype=torch.bool)
    rows = quality_table({"npa": scores, "cosine": scores}, truth, GROUPS, {"npa": 1e9, "cosine": -1e9})
    by = {(r["score"], r["rule"]): r for r in rows}
    assert len(rows) == 8
    assert by[("npa", "threshold")]["pairs"] == 0 and by[("cosine", "threshold")]["pairs"] == 6
    assert by[("npa", "top1")]["pairs"] == 6 and by[("npa", "top2")]["pairs"] == 12
    assert by[("npa", "top5")]["pairs"] == 6 * 4  # only 4 candidates per anchor
    assert by[("npa", "top2")]["precision"] == 1.0 and by[("npa", "top2")]["recall"] == 1.0
    mx, ok = max_scores(scores, GROUPS, truth)
    own = GROUPS[:, None] == GROUPS[None, :]
    assert torch.equal(mx, scores.masked_fill(own, -math.inf).max(1).values) and bool(ok.all())


def test_write_analysis_keeps_files_under_one_megabyte(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {"face_npa_scores": rng.standard_normal(400_000).astype(np.float32),
              "face_npa_scores_true": rng.random(400_000) < 0.5, "labels_yaw": np.zeros(5, np.float32)}
    npz = write_analysis(arrays, {"table": []}, tmp_path, "x")
    assert npz.stat().st_size < 1_000_000
    with np.load(npz) as f:
        assert 0 < len(f["face_npa_scores"]) == len(f["face_npa_scores_true"]) < 400_000
        assert len(f["labels_yaw"]) == 5


def test_write_analysis_summary_only_writes_just_the_json(tmp_path: Path) -> None:
    arrays = {"face_npa_scores": np.zeros(10, np.float32)}
    path = write_analysis(arrays, {"table": [{"rule": "top1", "precision": 0.5}]}, tmp_path, "x", summary_only=True)
    assert path == tmp_path / "x.json" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]
    summary = json.loads(path.read_text())
    assert summary["table"] == [{"rule": "top1", "precision": 0.5}] and summary["npz"] is None


@pytest.fixture(scope="module")
def analysis(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("analysis")
    paths = RunPaths(root / "runs", root / "cache", root / "data")
    return analyze_checkpoint("pcfrl", "synth-fer", "smoke", 0, ("pretrain.epochs=1",), paths, n=40,
                              out_dir=root / "out", device="cpu")


def test_analyze_checkpoint_writes_npz_and_json(analysis: Path) -> None:
    assert analysis.name == "pcfrl-synth-fer-smoke-seed0.npz" and analysis.stat().st_size < 1_000_000
    summary = json.loads(analysis.with_suffix(".json").read_text())
    with np.load(analysis) as f:
        data = {k: f[k] for k in f.files}
    for branch in ("pose", "face"):
        for scoring in ("npa", "cosine"):
            key = f"{branch}_{scoring}"
            assert data[f"{key}_max"].shape == (80,) and data[f"{key}_max_true"].dtype == bool
            # 80 views, candidates = other images' views; i < j: 80 * 78 / 2 pairs (< 20k, all kept)
            assert data[f"{key}_scores"].shape == (80 * 78 // 2,) == data[f"{key}_scores_true"].shape
    for name in ("fs", "face", "pose", "joint"):
        assert data[f"features_{name}"].shape[0] == 40 and data[f"features_{name}"].shape[1] <= 50
    assert set(data["features_joint_kind"].tolist()) == {0, 1}
    assert data["labels_emotion"].shape == (40,) and data["labels_yaw"].dtype == np.float32
    assert summary["kind"] == "calibration-analysis" and summary["n_views"] == 80 and summary["method"] == "pcfrl" and summary["branches"]["face"]["alpha"] == 10.0
    table = summary["table"]
    assert len(table) == 2 * 2 * 4
    assert {(r["branch"], r["score"], r["rule"]) for r in table} >= {("pose", "npa", "threshold"),
                                                                     ("face", "cosine", "top5")}
    for r in table:
        assert r["pairs"] >= r["correct"] >= 0 and r["hits"] <= r["findable"] <= 80
        assert r["precision"] is None or 0 <= r["precision"] <= 1
        if r["rule"] == "top2":
            assert r["pairs"] == 160
    # the per-epoch training log now carries recall next to precision
    assert summary["checkpoint"].startswith("<cache>/pretrain/pcfrl/")
    run_dir = analysis.parent.parent / "cache" / summary["checkpoint"].removeprefix("<cache>/")
    log = [json.loads(x) for x in (run_dir / "log.jsonl").read_text().splitlines()]
    assert all(0 <= row["face_cal_recall"] <= 1 and 0 <= row["pose_cal_recall"] <= 1 for row in log)


def _record(alpha: float, seed: int, acc: float, beta_face: float = 1.0) -> ResultRecord:
    return ResultRecord.from_json({
        "method": "pcfrl", "task": "synth-fer", "preset": "quick", "seed": seed, "metric": "accuracy",
        "metrics": {"accuracy": acc}, "config_hash": f"c{alpha}{seed}{beta_face}", "pretrain_hash": f"p{alpha}{seed}",
        "config": {"run": {"method": "pcfrl", "seed": seed},
                   "method": {"calib_face": {"alpha": alpha, "beta": beta_face, "threshold": 1.0},
                              "calib_pose": {"alpha": alpha, "beta": 0.2, "threshold": 1.0}}},
        "pretrain_log": [{"epoch": e, "face_cal_precision": 0.1 * e, "face_cal_recall": 0.2 * e,
                          "face_cal_rate": 1.0, "pose_cal_precision": 0.5, "pose_cal_rate": 0.5} for e in (1, 2)],
    })


def test_find_sweeps_and_series_by_hand() -> None:
    recs = [_record(1.0, 0, 0.50), _record(1.0, 1, 0.60), _record(10.0, 0, 0.70), _record(10.0, 1, 0.70),
            _record(5.0, 0, 0.30), _record(5.0, 0, 0.10, beta_face=0.5)]  # the last differs in beta_face too
    [s] = find_sweeps(recs, "alpha")
    assert s.x == [1.0, 5.0, 10.0] and s.mean == pytest.approx([0.55, 0.30, 0.70]) and s.n == [2, 1, 2]
    assert s.std == pytest.approx([np.std([0.5, 0.6], ddof=1), 0.0, 0.0])
    assert find_sweeps(recs, "beta_pose") == []
    [b] = find_sweeps(recs, "beta_face")  # only at alpha 5 are there two beta_face values
    assert b.x == [0.5, 1.0] and b.mean == pytest.approx([0.10, 0.30])
    [one] = calibration_series(recs[:1])
    assert one.label == "pcfrl" and not one.swept
    assert one.metrics["face_recall"] == [SeriesPoint(1, 0.2, 0.0, 1), SeriesPoint(2, 0.4, 0.0, 1)]
    assert set(one.metrics) == {"face_precision", "face_recall", "face_rate", "pose_precision", "pose_rate"}
    recs[1].pretrain_log[1]["face_cal_precision"] = 0.4  # seed 1 of alpha 1: epoch 2 precision 0.2 -> 0.4
    by_label = {s.label: s for s in calibration_series(recs)}
    # labels name what differs from the most common value: alpha 5 (2 of 4 configs) and beta_face 1.0
    assert sorted(by_label) == ["pcfrl", "pcfrl (calib.alpha=1.0) [2 seeds]", "pcfrl (calib.alpha=10.0) [2 seeds]",
                                "pcfrl (calib_face.beta=0.5)"]
    assert all(s.swept for s in by_label.values())
    point = by_label["pcfrl (calib.alpha=1.0) [2 seeds]"].metrics["face_precision"][1]
    assert point.epoch == 2 and point.n == 2 and point.mean == pytest.approx(0.3)
    assert point.std == pytest.approx(np.std([0.2, 0.4], ddof=1))
    assert config_labels([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1, "b": 2}]) == ["", "b=3", ""]
    # a record made after an option was added stores it; older ones do not: not a sweep, one series
    newer = _record(1.0, 2, 0.55)
    newer.config["method"]["augment"] = {"hue_space": "hsv"}
    [joined] = calibration_series([recs[0], newer])
    assert joined.label == "pcfrl [2 seeds]" and not joined.swept
    [s2] = find_sweeps([recs[0], newer, recs[2]], "alpha")
    assert s2.x == [1.0, 10.0] and s2.n == [2, 1]
    stems = ["pcl-synth-fer-quick-seed0", "pcfrl-synth-fer-quick-seed0", "pcfrl-top2-synth-fer-quick-seed0",
             "pcl-synth-hpe-quick-seed0"]
    assert pcl_pcfrl_pairs(stems) == {
        "synth-fer-quick-seed0": ("pcl-synth-fer-quick-seed0", "pcfrl-synth-fer-quick-seed0")}
    assert yaw_bins(np.array([-80.0, -20.0, 0.0, 14.9, 50.0])).tolist() == [0, 1, 2, 2, 4]


def test_render_all_figures(analysis: Path, tmp_path: Path) -> None:
    records = tmp_path / "records"
    top2 = dataclasses.replace(_record(10.0, 0, 0.4), method="pcfrl-top2")  # one config: the methods figure
    for i, rec in enumerate([_record(1.0, 0, 0.5), _record(1.0, 1, 0.6), _record(10.0, 0, 0.7), top2]):
        (records / str(i)).mkdir(parents=True)
        (records / str(i) / "r.json").write_text(json.dumps(rec.to_json()))
    adir = tmp_path / "analysis"
    adir.mkdir()
    for stem in ("pcfrl-synth-fer-smoke-seed0", "pcl-synth-fer-smoke-seed0"):  # same data stands in for pcl
        shutil.copy(analysis, adir / f"{stem}.npz")
        shutil.copy(analysis.with_suffix(".json"), adir / f"{stem}.json")
    (adir / "pcfrl-synth-fer-smoke-seed0.json").unlink()  # no JSON summary: its bar chart is skipped
    out = tmp_path / "figures"
    written = render_all_figures(records, adir, out)
    names = sorted(p.name for p in written)
    assert names == sorted([
        "calibration_per_epoch_quick.png", "calibration_per_epoch_quick_sweeps.png", "sweep_alpha.png",
        "pa_distributions_pcfrl-synth-fer-smoke-seed0.png", "pa_distributions_pcl-synth-fer-smoke-seed0.png",
        "calibration_bars_pcl-synth-fer-smoke-seed0.png", "tsne_pcl_vs_pcfrl_synth-fer-smoke-seed0.png"])
    for p in written:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5_000
    readme = (out / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme
    skipped = readme.split("## Skipped")[1]
    for name in ("sweep_beta_pose.png", "sweep_beta_face.png", "sweep_T.png",
                 "calibration_bars_pcfrl-synth-fer-smoke-seed0.png"):
        assert name in skipped


def test_render_all_figures_without_inputs(tmp_path: Path) -> None:
    out = tmp_path / "figures"
    assert render_all_figures(tmp_path / "none", tmp_path / "none", out) == []
    readme = (out / "README.md").read_text()
    assert "no result records" in readme and "no analysis files" in readme
    assert "tsne_pcl_vs_pcfrl" in readme and "calibration_per_epoch" in readme and not list(out.glob("*.png"))

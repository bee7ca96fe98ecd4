"""Learning curves: trunk snapshots along a pretraining, their points by the tasks' own protocols, the figure."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

import pcfrl_bench.curves as curves_module
from pcfrl_bench.cli import main
from pcfrl_bench.curves import learning_curves, resolve_curves
from pcfrl_bench.data.sources import build_source
from pcfrl_bench.errors import PcfrlError
from pcfrl_bench.models.detect import detect_state, read_weights_file
from pcfrl_bench.reporting.curves import CurvePoint, LearningCurve, curve_panels, load_curves, write_curve
from pcfrl_bench.reporting.figures import learning_curve_figure, render_all_figures
from pcfrl_bench.results import ResultRecord, load_records, write_record
from pcfrl_bench.runner import RunOptions, RunPaths, build_method, ensure_pretrained, resolve, run
from pcfrl_bench.snapshots import SNAPSHOT_DIR, read_snapshots, snapshot_epochs
from pcfrl_bench.train import pretrain

TINY = ["pretrain.epochs=3", "pretrain.checkpoint_every=2", "pretrain.batch_size=4"]  # 16 clips: 4 steps per epoch


class Interrupted(Exception):
    pass


def trunk_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_snapshot_epochs():
    assert snapshot_epochs(10, 3) == [0, 3, 6, 9, 10]
    assert snapshot_epochs(10, 5) == [0, 5, 10]
    assert snapshot_epochs(2, 5) == [0, 2]


def test_snapshots_at_their_epochs_with_step_counts_and_resume_keeps_them(tmp_path):
    """Trunk-only snapshots at epochs 0, 1, 2, 3 (every epoch, whatever the checkpoint cadence), 4 steps per epoch,
    read with weights_only; an interrupted run resumed ends with the snapshots of an uninterrupted one; the option
    leaves the config hashes alone."""
    resolved = resolve("simclr", "synth-fer", "smoke", overrides=[*TINY, "pretrain.snapshot_every=1"])
    cfg = resolved.config
    plain = resolve("simclr", "synth-fer", "smoke", overrides=TINY).config
    assert cfg.pretrain_hash("simclr") == plain.pretrain_hash("simclr") and cfg.result_hash() == plain.result_hash()
    data = build_source(cfg.data, tmp_path)
    initial = {k: v.clone() for k, v in build_method(resolved).backbone.state_dict().items()}
    full = build_method(resolved)
    pretrain(full, data, cfg.pretrain, tmp_path / "full", seed=0, device=torch.device("cpu"), progress=False)
    kept = read_snapshots(tmp_path / "full")
    assert sorted(kept) == [0, 1, 2, 3] and [kept[e].step for e in range(4)] == [0, 4, 8, 12]
    meta = json.loads((tmp_path / "full" / SNAPSHOT_DIR / "epoch-0002.json").read_text())
    assert meta == {"epoch": 2, "step": 8, "batch_size": 4, "steps_per_epoch": 4}
    first, last = (torch.load(kept[e].path, weights_only=True) for e in (0, 3))
    assert trunk_equal(first, initial) and trunk_equal(last, full.backbone.state_dict())
    assert not trunk_equal(first, last)

    broken = build_method(resolved)
    original = broken.on_epoch_end

    def stop_after_three(epoch, means):
        original(epoch, means)
        if epoch == 2:  # epoch 3's snapshot is written, its checkpoint is not: resume repeats epoch 3
            raise Interrupted
    broken.on_epoch_end = stop_after_three
    with pytest.raises(Interrupted):
        pretrain(broken, data, cfg.pretrain, tmp_path / "resumed", seed=0, device=torch.device("cpu"), progress=False)
    assert sorted(read_snapshots(tmp_path / "resumed")) == [0, 1, 2]
    pretrain(build_method(resolved), data, cfg.pretrain, tmp_path / "resumed", seed=0, device=torch.device("cpu"),
             progress=False, resume=True)
    resumed = read_snapshots(tmp_path / "resumed")
    assert sorted(resumed) == [0, 1, 2, 3]
    for e in range(4):
        assert trunk_equal(torch.load(resumed[e].path, weights_only=True), torch.load(kept[e].path, weights_only=True))


def test_curve_points_are_the_run_metrics_and_stored_points_are_skipped(tmp_path, monkeypatch):
    """The last point equals what `run` stores for the final checkpoint (same weights, same metric, features
    computed anew); a second call measures nothing, a point removed from the file is measured again alone."""
    paths = RunPaths(tmp_path / "curves", tmp_path / "cache", tmp_path / "data")
    pairs = resolve_curves(["simclr"], ["synth-fer"], "smoke", 0, every=1)
    (curve,) = learning_curves(pairs, paths, paths.out_dir, RunOptions(progress=False))
    assert [p.epoch for p in curve.points] == [0, 1, 2] and [p.step for p in curve.points] == [0, 1, 2]
    assert len({p.checkpoint_digest for p in curve.points}) == 3

    for cached in (tmp_path / "cache" / "features").rglob("*.pt"):
        cached.unlink()  # the record's features are extracted again, from last.pt
    record = run(resolve("simclr", "synth-fer", "smoke"), RunPaths(tmp_path / "runs", paths.cache_dir, paths.data_root),
                 RunOptions(progress=False), Console(quiet=True))
    assert record.reused_checkpoint
    assert record.checkpoint_digest == curve.points[-1].checkpoint_digest
    assert record.metrics["accuracy"] == curve.points[-1].value == curve.points[-1].metrics["accuracy"]

    measured = []
    real = curves_module.evaluate_encoder
    monkeypatch.setattr(curves_module, "evaluate_encoder",
                        lambda task, encoder, *a: measured.append(encoder.digest) or real(task, encoder, *a))
    (again,) = learning_curves(pairs, paths, paths.out_dir, RunOptions(progress=False))
    assert measured == [] and again.points == curve.points
    path = next(paths.out_dir.rglob("smoke-seed0.json"))
    data = json.loads(path.read_text())
    data["points"] = [p for p in data["points"] if p["epoch"] != 1]
    path.write_text(json.dumps(data))
    (mended,) = learning_curves(pairs, paths, paths.out_dir, RunOptions(progress=False))
    assert measured == [curve.points[1].checkpoint_digest] and mended.points == curve.points
    coarse = resolve_curves(["simclr"], ["synth-fer"], "smoke", 0, every=2)  # a point every 2 epochs: 0 and 2
    (thinned,) = learning_curves(coarse, paths, paths.out_dir, RunOptions(progress=False))
    assert len(measured) == 1 and thinned.points == [curve.points[0], curve.points[2]]
    assert [p["epoch"] for p in json.loads(path.read_text())["points"]] == [0, 2]  # what `figures` draws too

    snapshot = next((tmp_path / "cache" / "pretrain").rglob(f"{SNAPSHOT_DIR}/epoch-0002.pt"))
    found = detect_state(read_weights_file(snapshot), snapshot)  # `eval --checkpoint` finds the run's model section
    assert found.kind == "pcfrl-bench" and str(snapshot.parent.parent / "config.yaml") in found.note


def test_a_pretraining_without_snapshots_says_how_to_get_them(tmp_path):
    paths = RunPaths(tmp_path / "curves", tmp_path / "cache", tmp_path / "data")
    plain = resolve("simclr", "synth-fer", "smoke")
    ensure_pretrained(plain, paths, torch.device("cpu"), RunOptions(progress=False), Console(quiet=True))
    pairs = resolve_curves(["simclr"], ["synth-fer"], "smoke", 0, every=1)
    console = Console(record=True, width=300)
    with pytest.raises(PcfrlError, match=r"kept no snapshots.*epochs 0, 1, 2 are missing.*--restart"):
        learning_curves(pairs, paths, paths.out_dir, RunOptions(progress=False), console)
    assert "note: pretrain.snapshot_every=1, but the pretraining" in console.export_text()  # `run` says it too
    assert not list(paths.out_dir.rglob("*.json"))

    result = CliRunner().invoke(main, ["--threads", "1", "curves", "-m", "simclr", "-t", "synth-fer", "--preset",
                                       "smoke", "--every", "1", "--curves-dir", str(paths.out_dir), "--cache-dir",
                                       str(paths.cache_dir), "--no-progress"])
    assert result.exit_code == 2 and "--restart" in result.output and "Traceback" not in result.output
    (curve,) = learning_curves(pairs, paths, paths.out_dir, RunOptions(restart=True, progress=False))
    assert [p.epoch for p in curve.points] == [0, 1, 2]


@pytest.mark.parametrize("args, message", [
    (["-m", "simclrr"], "simclr"), (["-t", "synth-fe"], "synth-fer"), (["-m", "random-init"], "does not pretrain"),
    (["--set", "model.checkpoint=x.pt"], "given weights")])
def test_bad_input_is_a_clear_error(tmp_path, args, message):
    result = CliRunner().invoke(main, ["curves", "--preset", "smoke", "--curves-dir", str(tmp_path / "c"), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").rglob("*.json"))


def record(method: str, task: str, seed: int, value: float, metric: str = "accuracy", trivial: float = 10.0,
           preset: str = "quick") -> ResultRecord:
    return ResultRecord.from_json({"method": method, "task": task, "preset": preset, "seed": seed, "metric": metric,
                                   "metrics": {metric: value}, "trivial": {metric: trivial}, "config": {},
                                   "config_hash": f"{method}{seed}"})


def curve(method: str, task: str, values: list[float], metric: str = "accuracy", higher: bool = True,
          preset: str = "quick") -> LearningCurve:
    points = [CurvePoint(e, 12 * e, v, {metric: v}, f"d{e}") for e, v in enumerate(values)]
    return LearningCurve(method, task, preset, 0, metric, higher, "h" * 64, True, [], "run", points)


def test_panels_hold_the_curves_and_the_bands_the_figure_draws(tmp_path):
    records = [record("raw-pixels", "synth-fer", s, v) for s, v in enumerate((30.0, 34.0))]
    records += [record("supervised", "synth-fer", s, v) for s, v in enumerate((60.0, 64.0, 68.0))]
    records += [record("random-init", "synth-hpe", 0, 21.0, "mae", trivial=25.0),
                record("supervised", "synth-hpe", 0, 6.0, "mae", trivial=25.0),
                record("supervised", "synth-hpe", 1, 99.0, "mae", preset="demo")]  # another preset: not counted
    curves = [curve("simclr", "synth-hpe", [22.0, 20.0, 19.0], "mae", False), curve("pcl", "synth-fer", [20, 25, 31]),
              curve("simclr", "synth-fer", [20, 22, 24]), curve("pcl", "synth-fer", [1.0], preset="demo")]
    panels = curve_panels(curves, records, "quick")
    assert [p.task for p in panels] == ["synth-fer", "synth-hpe"]
    fer, hpe = panels
    assert [(line.label, line.steps, line.values) for line in fer.lines] == [
        ("pcl", (0, 12, 24), (20, 25, 31)), ("simclr", (0, 12, 24), (20, 22, 24))]
    bands = {b.method: b for b in fer.bands}
    assert set(bands) == {"trivial", "raw-pixels", "supervised"}  # no random-init record of synth-fer
    assert bands["raw-pixels"].mean == 32.0 and bands["raw-pixels"].std == pytest.approx(math.sqrt(8))
    assert bands["supervised"].mean == 64.0 and bands["supervised"].std == pytest.approx(4.0)
    assert bands["trivial"].mean == 10.0 and bands["trivial"].n == 3  # one per seed
    assert {b.method: (b.mean, b.n) for b in hpe.bands} == {"trivial": (25.0, 1), "random-init": (21.0, 1),
                                                            "supervised": (6.0, 1)}
    assert "lower is better" in hpe.ylabel and "higher is better" in fer.ylabel

    fig = learning_curve_figure(panels, "title")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["synth-fer", "synth-hpe"]
    ax_fer, ax_hpe = shown
    drawn = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in ax_fer.get_lines()}
    assert drawn["pcl"] == ([0, 12, 24], [20, 25, 31]) and drawn["simclr"] == ([0, 12, 24], [20, 22, 24])
    ceiling = next(k for k in drawn if k.startswith("ceiling: supervised"))
    assert drawn[ceiling][1] == [64.0, 64.0] and "64.00 ± 4.00 (n=3)" in ceiling
    assert len(ax_fer.patches) == 2  # the ± std bands of raw pixels and supervised (the trivial one has no spread)
    assert ax_hpe.yaxis_inverted() and not ax_fer.yaxis_inverted()
    assert "lower is better" in ax_hpe.get_ylabel()
    import matplotlib.pyplot as plt
    plt.close(fig)

    root = tmp_path / "ref"
    for r in records:
        write_record(root, r)
    for c in curves:
        write_curve(root / "curves", c)
    assert len(load_records(root)[0]) == len(records) and not load_records(root)[1]  # curves are not records
    assert len(load_curves(root / "curves")[0]) == 4
    written = render_all_figures(root, None, tmp_path / "figures")
    assert {p.name for p in written} >= {"learning_curves_quick.png", "learning_curves_demo.png"}
    assert (tmp_path / "figures" / "learning_curves_quick.png").read_bytes()[:4] == b"\x89PNG"
    index = (tmp_path / "figures" / "README.md").read_text()
    assert "`learning_curves_quick.png`: learning curves, quick preset" in index

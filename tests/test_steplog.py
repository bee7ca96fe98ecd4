"""Per-step logs: steps.csv (always) and TensorBoard (when installed) agree with the per-epoch JSONL log."""

from __future__ import annotations

import json

import pytest
import torch

from pcfrl_bench.data.sources import build_source
from pcfrl_bench.runner import build_method, resolve
from pcfrl_bench.steplog import STEPS_CSV, TENSORBOARD_DIR, read_steps
from pcfrl_bench.train import LOG, pretrain

OVERRIDES = ["pretrain.batch_size=4", "pretrain.epochs=2"]  # the smoke world has 16 clips: 4 steps per epoch


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch pcfrl smoke pretraining (4 steps per epoch); its run folder."""
    run_dir = tmp_path_factory.mktemp("steplog")
    torch.set_num_threads(1)
    resolved = resolve("pcfrl", "synth-fer", "smoke", overrides=OVERRIDES)
    cfg = resolved.config
    pretrain(build_method(resolved), build_source(cfg.data, run_dir / "data"), cfg.pretrain, run_dir / "run",
             seed=0, device=torch.device("cpu"), progress=False)
    return run_dir / "run"


def test_steps_csv_has_one_row_per_step_and_averages_to_the_epoch_log(trained):
    rows = read_steps(trained)
    epochs = [json.loads(line) for line in (trained / LOG).read_text().splitlines()]
    assert [(r["epoch"], r["step"]) for r in rows] == [(1 + s // 4, 1 + s) for s in range(8)]
    header = (trained / STEPS_CSV).read_text().splitlines()[0].split(",")
    assert header[:3] == ["epoch", "step", "lr"] and {"loss", "face_cal_rate", "pose_cal_rate"} <= set(header)
    for e, row in enumerate(epochs, start=1):
        mine = [r for r in rows if r["epoch"] == e]
        for key in ("loss", "loss_face", "face_cal_rate", "pose_cal_pairs"):
            assert sum(r[key] for r in mine) / 4 == pytest.approx(row[key], rel=1e-12), key
    # the learning rate of each step: cosine over the 8 steps from 1e-4 (the smoke preset's lr)
    assert rows[0]["lr"] == pytest.approx(1e-4) and rows[4]["lr"] == pytest.approx(0.5e-4)
    assert rows[-1]["lr"] < rows[-2]["lr"] < rows[0]["lr"]


def test_tensorboard_events_hold_the_same_scalars(trained):
    pytest.importorskip("tensorboard", reason="the optional extra pcfrl-bench[tensorboard] is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(trained / TENSORBOARD_DIR))
    events.Reload()
    loss = events.Scalars("train/loss")
    rows = read_steps(trained)
    assert [e.step for e in loss] == [int(r["step"]) for r in rows]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in rows], rel=1e-6)
    assert "train/lr" in events.Tags()["scalars"] and "train/face_cal_rate" in events.Tags()["scalars"]

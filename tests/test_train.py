import json
import math

import pytest
import torch

from pcfrl_bench.errors import PcfrlError, TrainingDivergedError
from pcfrl_bench.methods.base import StepOutput
from pcfrl_bench.runner import RunOptions, RunPaths, build_method, ensure_pretrained, resolve
from pcfrl_bench.data.sources import build_source
from pcfrl_bench.train import CHECKPOINT, LOG, checkpoint_state, lr_factor, pretrain
from rich.console import Console

OVERRIDES = ["pretrain.epochs=3", "pretrain.checkpoint_every=1", "data.max_samples=64", "pretrain.batch_size=16"]


class Interrupted(Exception):
    pass


def setup(tmp_path):
    resolved = resolve("simclr", "digits", "smoke", overrides=OVERRIDES)
    cfg = resolved.config
    return resolved, cfg, build_source(cfg.data, tmp_path)


def test_lr_factor_warmup_then_cosine():
    assert lr_factor(0, 100, 10, "cosine", 0.0) == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine", 0.2) == pytest.approx(0.2)
    assert lr_factor(50, 100, 0, "constant", 0.0) == 1.0
    # official PCL: cos over 6000 epochs, constant within an epoch (10 steps per epoch here)
    assert lr_factor(7999, 8000, 0, "official", 0.0, 10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 799 / 6000)))
    assert lr_factor(7999, 8000, 0, "official", 0.0, 10) == lr_factor(7990, 8000, 0, "official", 0.0, 10) > 0.95


def test_resume_repeats_an_uninterrupted_run_exactly(tmp_path):
    resolved, cfg, data = setup(tmp_path)
    full = build_method(resolved)
    pretrain(full, data, cfg.pretrain, tmp_path / "full", seed=0, device=torch.device("cpu"), progress=False)

    broken = build_method(resolved)
    original = broken.on_epoch_end

    def stop_after_two(epoch, means):
        original(epoch, means)
        if epoch == 2:  # epochs 1 and 2 are checkpointed, epoch 3 is interrupted before its checkpoint
            raise Interrupted
    broken.on_epoch_end = stop_after_two
    with pytest.raises(Interrupted):
        pretrain(broken, data, cfg.pretrain, tmp_path / "resumed", seed=0, device=torch.device("cpu"), progress=False)
    assert checkpoint_state(tmp_path / "resumed").epoch == 2

    resumed = build_method(resolved)
    outcome = pretrain(resumed, data, cfg.pretrain, tmp_path / "resumed", seed=0, device=torch.device("cpu"),
                       progress=False, resume=True)
    assert outcome.resumed_from == 2 and outcome.epochs_run == 1
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    rows = [json.loads(r) for r in (tmp_path / "resumed" / LOG).read_text().splitlines()]
    full_rows = [json.loads(r) for r in (tmp_path / "full" / LOG).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [r["loss"] for r in rows] == [r["loss"] for r in full_rows]


def test_interrupted_checkpoint_needs_resume_or_restart(tmp_path):
    resolved, cfg, data = setup(tmp_path)
    paths = RunPaths(tmp_path / "out", tmp_path / "cache", tmp_path)
    method = build_method(resolved)
    method.on_epoch_end = lambda epoch, means: (_ for _ in ()).throw(Interrupted) if epoch == 1 else None
    from pcfrl_bench.runner import pretrain_dir
    with pytest.raises(Interrupted):
        pretrain(method, data, cfg.pretrain, pretrain_dir(resolved, paths.cache_dir), seed=0,
                 device=torch.device("cpu"), progress=False)
    console = Console(record=True)
    with pytest.raises(PcfrlError, match="--resume"):
        ensure_pretrained(resolved, paths, torch.device("cpu"), RunOptions(progress=False), console)
    _, run_dir, reused, _ = ensure_pretrained(resolved, paths, torch.device("cpu"),
                                              RunOptions(resume=True, progress=False), console)
    assert "Resuming pretraining from epoch 1" in console.export_text()
    assert checkpoint_state(run_dir).complete and not reused


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    resolved, cfg, data = setup(tmp_path)
    method = build_method(resolved)
    step = method.training_step
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        out = step(batch)
        if calls["n"] > 4:  # epoch 1 has 4 steps (64 images / 16); epoch 2 diverges
            return StepOutput(out.loss * float("nan"), out.logs)
        return out
    method.training_step = poisoned
    with pytest.raises(TrainingDivergedError, match="epoch 2") as err:
        pretrain(method, data, cfg.pretrain, tmp_path / "run", seed=0, device=torch.device("cpu"), progress=False)
    assert "last good checkpoint (epoch 1)" in str(err.value)
    saved = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=False)
    assert saved["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in saved["model"].values() if v.is_floating_point())

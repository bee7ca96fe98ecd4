"""Faults and hostile input (issue 12): files are data, never code; paths from lists stay inside their root;
no checkpoint is kept or reused when it is not good; no finished result is lost; bad numbers are named errors."""

import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time

import pytest
import torch
from click.testing import CliRunner
from rich.console import Console

import fixtures_real as fx
from pcfrl_bench.cli import main
from pcfrl_bench.config import PretrainConfig, build_dataclass
from pcfrl_bench.data.readers import check_dataset, read_cifar10, read_cplfw, read_lfw
from pcfrl_bench.data.sources import build_source
from pcfrl_bench.errors import CheckpointError, ConfigError, MalformedFileError, ResultNotSavedError, TrainingDivergedError
from pcfrl_bench.evaluation.features import FeatureSet, degeneration_warnings, effective_rank
from pcfrl_bench.io import atomic_write_text, folder_lock
from pcfrl_bench.runner import RunOptions, RunPaths, build_method, ensure_pretrained, pretrain_dir, resolve, run
from pcfrl_bench.train import CHECKPOINT, checkpoint_state, nonfinite_tensors, pretrain

TINY = ["pretrain.epochs=2", "pretrain.checkpoint_every=1", "data.max_samples=32", "pretrain.batch_size=16"]
CPU = torch.device("cpu")


class Payload:
    """Unpickling this creates ``marker`` (by calling ``open``): proof that a file ran code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def tiny(tmp_path):
    resolved = resolve("simclr", "digits", "smoke", overrides=TINY)
    return resolved, RunPaths(tmp_path / "out", tmp_path / "cache", tmp_path / "data")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def said(result, text: str) -> bool:
    """Whether the CLI printed ``text``, ignoring the line breaks rich adds at the terminal width."""
    return "".join(text.split()) in "".join(result.output.split())


# ------------------------------------------------------------------------------------- code from the cache


def test_booby_trapped_checkpoint_is_refused_without_running_its_payload(tmp_path):
    resolved, paths = tiny(tmp_path)
    run_dir = pretrain_dir(resolved, paths.cache_dir)
    run_dir.mkdir(parents=True)
    marker = tmp_path / "payload-ran"
    torch.save({"model": Payload(marker), "optimizer": {}, "scheduler": {}, "epoch": 2, "complete": True},
               run_dir / CHECKPOINT)
    with pytest.raises(CheckpointError, match="--restart"):
        ensure_pretrained(resolved, paths, CPU, RunOptions(progress=False), Console(quiet=True))
    with pytest.raises(CheckpointError):  # --resume reads it the same way
        ensure_pretrained(resolved, paths, CPU, RunOptions(resume=True, progress=False), Console(quiet=True))
    assert not marker.exists()
    _, _, reused, _ = ensure_pretrained(resolved, paths, CPU, RunOptions(restart=True, progress=False),
                                        Console(quiet=True))
    assert not reused and checkpoint_state(run_dir).complete and not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00garbage\xff" * 10])
def test_empty_or_corrupt_checkpoint_names_the_fix_and_restart_clears_it(tmp_path, content):
    resolved, paths = tiny(tmp_path)
    run_dir = pretrain_dir(resolved, paths.cache_dir)
    run_dir.mkdir(parents=True)
    (run_dir / CHECKPOINT).write_bytes(content)
    args = ["run", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--no-progress", "--out", paths.out_dir,
            "--cache-dir", paths.cache_dir, *[x for o in TINY for x in ("--set", o)]]
    failed = invoke(*args)
    assert failed.exit_code == 2
    assert said(failed, "is unreadable") and said(failed, "--restart") and said(failed, str(CHECKPOINT))
    assert invoke(*args, "--restart").exit_code == 0
    assert checkpoint_state(run_dir).complete


# ------------------------------------------------------------------------------------- code from a dataset


def test_crafted_cifar_batch_is_refused_without_running_its_payload(tmp_path):
    fx.write_cifar10(tmp_path)
    assert len(read_cifar10(tmp_path)["train"]) == 15  # the honest fixture (numpy arrays) still reads
    marker = tmp_path / "payload-ran"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": Payload(marker), b"labels": [0]}))
    with pytest.raises(MalformedFileError, match="data_batch_1: cannot unpickle .refused io.open"):
        read_cifar10(tmp_path)
    report = check_dataset("cifar10", tmp_path)
    assert any("refused" in p for p in report["problems"])
    result = invoke("list", "--data-root", tmp_path)
    assert result.exit_code == 0 and not marker.exists()


# -------------------------------------------------------------------------------- reads outside the root


@pytest.mark.parametrize("bad", ["../outside.jpg", "images/../../outside.jpg", "/etc/hostname"])
def test_pair_list_paths_must_stay_inside_the_dataset(tmp_path, bad):
    root = tmp_path / "CPLFW"
    facts = fx.write_cplfw(root)
    fx.write_image(tmp_path / "outside.jpg")
    lines = facts["pairs_file"].read_text().splitlines()
    lines[2] = f"{bad} 1"  # line 3: first image of the second positive pair
    facts["pairs_file"].write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError, match=r"pairs_CPLFW.txt:3: path .* leads outside the dataset folder"):
        read_cplfw(root)
    report = check_dataset("cplfw", root)
    assert any("pairs_CPLFW.txt:3" in p for p in report["problems"])


def test_lfw_names_cannot_climb_out_of_the_image_folder(tmp_path):
    fx.write_lfw(tmp_path)
    lines = (tmp_path / "pairs.txt").read_text().splitlines()
    name = lines[1].split("\t")[0]
    lines[1] = lines[1].replace(name, "../../secret", 1)
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(MalformedFileError, match=r"pairs.txt:2: .*outside"):
        read_lfw(tmp_path)


# ----------------------------------------------------------------------------- features keyed by the weights


def test_feature_cache_follows_the_checkpoint_contents(tmp_path):
    resolved, paths = tiny(tmp_path)
    first = run(resolved, paths, RunOptions(progress=False), Console(quiet=True))
    run_dir = pretrain_dir(resolved, paths.cache_dir)
    ckpt = torch.load(run_dir / CHECKPOINT, weights_only=True)
    name = next(k for k, v in ckpt["model"].items() if v.is_floating_point() and "weight" in k)
    ckpt["model"][name] = ckpt["model"][name] * 2  # what a re-pretraining with other weights leaves
    torch.save(ckpt, run_dir / CHECKPOINT)
    second = run(resolved, paths, RunOptions(progress=False), Console(quiet=True))
    assert second.reused_checkpoint and second.checkpoint_digest != first.checkpoint_digest
    assert len(list((paths.cache_dir / "features").iterdir())) == 2  # not the first run's cached features


# ------------------------------------------------------------------------------------ a good checkpoint


def test_non_finite_buffer_is_never_checkpointed(tmp_path):
    resolved, _ = tiny(tmp_path)
    cfg = resolved.config
    method = build_method(resolved)
    buffer_name, var = next((n, b) for n, b in method.named_buffers() if n.endswith("running_var"))

    def blow_up(epoch, means):
        if epoch == 1:  # after epoch 2 the loss is finite but a BatchNorm variance is infinite
            var.fill_(float("inf"))
    method.on_epoch_end = blow_up
    data = build_source(cfg.data, tmp_path)
    with pytest.raises(TrainingDivergedError, match=f"non-finite values in model.{buffer_name}.*epoch 2") as err:
        pretrain(method, data, cfg.pretrain, tmp_path / "run", seed=0, device=CPU, progress=False)
    assert "last good checkpoint (epoch 1)" in str(err.value)
    kept = torch.load(tmp_path / "run" / CHECKPOINT, weights_only=True)
    assert kept["epoch"] == 1 and nonfinite_tensors(kept) == []


def test_nonfinite_tensors_walks_nested_states():
    state = {"model": {"w": torch.ones(2), "n": torch.tensor([1, 2])},
             "optimizer": {"state": {0: {"exp_avg": torch.tensor([1.0, float("nan")])}}, "groups": [{"lr": 0.1}]}}
    assert nonfinite_tensors(state) == ["optimizer.state.0.exp_avg"]


def test_collapsed_features_warn_and_healthy_ones_do_not():
    torch.manual_seed(0)
    healthy = torch.randn(200, 16)
    # hand computation: variance only along one direction -> one component holds all of it -> rank 1
    line = torch.arange(200.0)[:, None] * torch.ones(1, 16)
    assert effective_rank(line) == pytest.approx(1.0)
    assert effective_rank(torch.ones(5, 3)) == 0.0
    # two orthogonal directions with equal variance: entropy log 2 -> effective rank 2
    two = torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]])
    assert effective_rank(two) == pytest.approx(2.0)
    targets = {"label": torch.zeros(200, dtype=torch.long)}
    assert degeneration_warnings({"train": FeatureSet(healthy, targets)}) == []
    blown = line * 1e8 + 1e-3 * healthy
    (warning,) = degeneration_warnings({"train": FeatureSet(blown, targets)})
    assert "collapsed" in warning and "pretrain.optim.lr" in warning
    nan = healthy.clone()
    nan[3, 2] = float("nan")
    assert "NaN" in degeneration_warnings({"test": FeatureSet(nan, targets)})[0]


# ---------------------------------------------------------------------------------------------- the lock


def test_second_run_of_a_config_waits_for_the_first(tmp_path):
    folder = tmp_path / "pretrain" / "abc"
    waited, order = [], []

    def second():
        with folder_lock(folder, on_wait=waited.append):
            order.append("second")
    with folder_lock(folder):
        thread = threading.Thread(target=second)
        thread.start()
        deadline = time.monotonic() + 10
        while not waited and time.monotonic() < deadline:
            time.sleep(0.01)
        order.append("first")
    thread.join(10)
    assert order == ["first", "second"]
    assert f"PID {os.getpid()}" in waited[0]


def test_lock_left_by_a_killed_process_does_not_block(tmp_path):
    folder = tmp_path / "run"
    code = ("import os, sys; from pcfrl_bench.io import folder_lock; "
            f"folder_lock({str(folder)!r}).__enter__(); os._exit(0)")  # exits holding the lock, never releasing
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "run.lock").exists()
    waited = []
    with folder_lock(folder, on_wait=waited.append):
        pass
    assert waited == []


def test_pretraining_sweeps_temp_files_of_killed_checkpoint_writes(tmp_path):
    resolved, _ = tiny(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    orphan = run_dir / ".last.pt.x1y2.tmp"
    orphan.write_bytes(b"half a checkpoint")
    pretrain(build_method(resolved), build_source(resolved.config.data, tmp_path), resolved.config.pretrain,
             run_dir, seed=0, device=CPU, progress=False)
    assert not orphan.exists() and not list(run_dir.glob("*.tmp"))


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)  # the process's umask, as at import
    assert mask & 0o066 != 0o066  # else 0600 would be the usual mode and this test could not fail
    mode = atomic_write_text(tmp_path / "record.json", "{}").stat().st_mode & 0o777
    assert mode == 0o666 & ~mask  # what open() gives, not mkstemp's 0600


# ---------------------------------------------------------------------------------------- results kept


def test_unwritable_out_fails_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = invoke("run", "-m", "simclr", "-t", "digits", "--preset", "smoke", "--no-progress",
                    "--out", blocker / "runs", "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 2 and said(result, "which is a file, not a folder")
    assert not (tmp_path / "cache" / "pretrain").exists()


def test_a_finished_result_is_never_lost(tmp_path, monkeypatch):
    import pcfrl_bench.runner as runner
    resolved, paths = tiny(tmp_path)
    real_write = runner.write_record

    def disk_full_under_out(out_dir, record):
        if out_dir == paths.out_dir:
            raise OSError(28, "No space left on device")
        return real_write(out_dir, record)
    monkeypatch.setattr(runner, "write_record", disk_full_under_out)
    with pytest.raises(ResultNotSavedError, match="No space left on device.*saved as .*unsaved-records") as err:
        run(resolved, paths, RunOptions(progress=False), Console(quiet=True))
    [kept] = (paths.cache_dir / "unsaved-records" / "digits" / "simclr").glob("smoke-seed0-*.json")  # --set run
    record = json.loads(kept.read_text())
    assert f"accuracy {record['metrics']['accuracy']}" in str(err.value)


# ------------------------------------------------------------------------------------------ numbers


@pytest.mark.parametrize("override, key", [
    ("pretrain.epochs=-3", "pretrain.epochs"), ("pretrain.checkpoint_every=0", "pretrain.checkpoint_every"),
    ("eval.probe.epochs=0", "eval.probe.epochs"), ("pretrain.optim.lr=-0.1", "pretrain.optim.lr"),
    ("pretrain.optim.lr=.nan", "pretrain.optim.lr"), ("data.image_size=0", "data.image_size"),
    ("data.num_workers=-1", "data.num_workers"), ("pretrain.optim.betas=[0.9, 1.5]", "pretrain.optim.betas[1]"),
    ("pretrain.batch_size=1", "pretrain.batch_size"), ("eval.probe.lr=0", "eval.probe.lr"),
])
def test_out_of_range_numbers_are_named_errors(override, key):
    with pytest.raises(ConfigError, match="^" + re.escape(key) + ": "):
        resolve("simclr", "digits", "smoke", overrides=[override])


def test_range_message_and_cli_exit_status():
    with pytest.raises(ConfigError, match=r"pretrain.epochs: -3 is out of range; expected \[0, 100_000\]"):
        build_dataclass(PretrainConfig, {"epochs": -3}, "pretrain")
    assert resolve("random-init", "digits", "smoke").config.pretrain.epochs == 0  # zero is a valid schedule
    result = invoke("config", "-m", "simclr", "-t", "digits", "--set", "pretrain.optim.lr=inf")
    assert result.exit_code == 2 and said(result, "pretrain.optim.lr: expected a finite number")


# ------------------------------------------------------------------------------------------ reporting


def test_results_survive_a_null_metric_and_a_missing_folder(tmp_path):
    record = {"method": "simclr", "task": "digits", "preset": "smoke", "seed": 0, "metric": "accuracy",
              "metrics": {"accuracy": None}, "best_over_epochs": None, "config": {}, "config_hash": "x"}
    atomic_write_text(tmp_path / "runs" / "digits" / "simclr" / "smoke-seed0.json", json.dumps(record))
    shown = invoke("results", "--records", tmp_path / "runs")
    assert shown.exit_code == 0 and said(shown, "simclr")
    missing = invoke("results", "--records", tmp_path / "nope")
    assert missing.exit_code == 2 and said(missing, "no folder of result records")


def _registry_copy(tmp_path, monkeypatch):
    import shutil

    from pcfrl_bench.catalog import registry_root
    home = tmp_path / "home"
    for kind in ("methods", "tasks"):
        shutil.copytree(registry_root() / kind, home / kind)
    monkeypatch.setenv("PCFRL_BENCH_HOME", str(home))
    return home


def test_a_broken_registry_file_does_not_break_list(tmp_path, monkeypatch):
    home = _registry_copy(tmp_path, monkeypatch)
    (home / "methods" / "latin1.yaml").write_bytes("description: caf\xe9\n".encode("latin-1"))
    result = invoke("list")
    assert result.exit_code == 0 and said(result, "simclr")
    assert said(result, "latin1.yaml: not a UTF-8 text file")
    chosen = invoke("config", "-m", "latin1", "-t", "digits")
    assert chosen.exit_code == 2 and said(chosen, "latin1.yaml: not a UTF-8 text file")


@pytest.mark.parametrize("text, problem", [
    ("defaults: [1, 2]\n", "'defaults' must be a mapping"),
    ("presets: {smoke: 3}\n", "preset 'smoke' must be a mapping"),
    ("description: {a: 1}\n", "'description' must be a str"),
])
def test_registry_sections_of_the_wrong_type_are_named(tmp_path, monkeypatch, text, problem):
    home = _registry_copy(tmp_path, monkeypatch)
    (home / "methods" / "odd.yaml").write_text("implementation: simclr\n" + text)
    result = invoke("config", "-m", "odd", "-t", "digits")
    assert result.exit_code == 2 and said(result, "odd.yaml") and said(result, problem)


# ---------------------------------------------------------------------------------------------- grid


def test_moco_smoke_builds_on_digits():
    method = build_method(resolve("moco", "digits", "smoke"))
    assert sum(p.numel() for p in method.parameters()) > 0


def test_grid_accepts_resume_after_an_interruption(tmp_path):
    resolved, paths = tiny(tmp_path)
    cfg = resolved.config
    method = build_method(resolved)

    def stop(epoch, means):
        if epoch == 1:  # epoch 1 is checkpointed, epoch 2 is interrupted
            raise RuntimeError("interrupted")
    method.on_epoch_end = stop
    with pytest.raises(RuntimeError, match="interrupted"):
        pretrain(method, build_source(cfg.data, tmp_path), cfg.pretrain, pretrain_dir(resolved, paths.cache_dir),
                 seed=0, device=CPU, progress=False)
    args = ["grid", "--methods", "simclr", "--tasks", "digits", "--preset", "smoke", "--out", paths.out_dir,
            "--cache-dir", paths.cache_dir, *[x for o in TINY for x in ("--set", o)]]
    told = invoke(*args)
    assert told.exit_code == 2 and said(told, "--resume")
    assert invoke(*args, "--resume").exit_code == 0
    assert checkpoint_state(pretrain_dir(resolved, paths.cache_dir)).complete


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads process states from /proc")
def test_grid_workers_end_when_the_grid_process_is_killed(tmp_path):
    child = ("import os, sys, time; from pcfrl_bench.interrupt import exit_with_parent; "
             "exit_with_parent(os.getppid(), 0.05); print(os.getpid(), flush=True); time.sleep(120)")
    parent = ("import subprocess, sys, time; "
              f"c = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=sys.stdout); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    worker = int(proc.stdout.readline())
    proc.kill()
    proc.wait(10)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _alive(worker):
        time.sleep(0.05)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "\nState:\tZ" not in fh.read()
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------------------------------- unreadable images


def test_data_check_decode_all_finds_what_the_spot_check_misses(tmp_path):
    root = tmp_path / "data" / "CPLFW"
    fx.write_cplfw(root)
    (root / "images" / "Per_3_2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    assert check_dataset("cplfw", root, decode_sample=1)["problems"] == []
    (problem,) = check_dataset("cplfw", root, decode_sample=None)["problems"]
    assert "Per_3_2.jpg" in problem
    result = invoke("data", "check", "-t", "cplfw", "--data-root", tmp_path / "data", "--decode", "all")
    assert result.exit_code == 1 and said(result, "cannot decode image") and said(result, "Per_3_2.jpg")
    assert invoke("data", "check", "-t", "cplfw", "--decode", "some").exit_code == 2


def test_run_stops_before_pretraining_or_skips_and_records_unreadable_images(tmp_path):
    root = tmp_path / "data" / "CPLFW"
    fx.write_cplfw(root)
    (root / "images" / "Per_3_2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")  # in pairs 4 (pos) and 13 (neg)
    args = ["run", "-m", "simclr", "-t", "cplfw", "--preset", "smoke", "--no-progress", "--data-root",
            tmp_path / "data", "--out", tmp_path / "runs", "--cache-dir", tmp_path / "cache", "--set",
            "model.backbone=timm:test_resnet", "--set", "data.source=digits", *[x for o in TINY for x in ("--set", o)]]
    stopped = invoke(*args)
    assert stopped.exit_code == 2 and said(stopped, "1 image(s) of task cplfw cannot be decoded")
    assert said(stopped, "Per_3_2.jpg") and said(stopped, "--unreadable skip")
    assert not (tmp_path / "cache" / "pretrain").exists()
    skipped = invoke(*args, "--unreadable", "skip")
    assert skipped.exit_code == 0, skipped.output
    [path] = (tmp_path / "runs" / "cplfw" / "simclr").glob("smoke-seed0-*.json")  # --set runs: named by config hash
    record = json.loads(path.read_text())
    assert len(record["unreadable_images"]["test"]) == 1 and "Per_3_2.jpg" in record["unreadable_images"]["test"][0]
    assert record["counts"]["images"] == 19 and record["counts"]["pairs"] == 18


def test_leaving_out_an_image_renumbers_the_pairs():
    from pcfrl_bench.data.readers import SampleIndex
    import numpy as np
    index = SampleIndex(paths=[f"{c}.jpg" for c in "abcd"], pairs=np.array([[0, 1], [1, 2], [2, 3], [3, 0]]),
                        same=np.array([True, False, True, False]), fold=np.array([0, 1, 2, 3]))
    out = index.without([1])  # pairs (0,1) and (1,2) go; c -> 1, d -> 2
    assert out.paths == ["a.jpg", "c.jpg", "d.jpg"]
    assert out.pairs.tolist() == [[1, 2], [2, 0]] and out.same.tolist() == [True, False]
    assert out.fold.tolist() == [2, 3]


def test_unknown_backbone_suggests_without_listing_every_timm_model():
    from pcfrl_bench.config import ModelConfig
    from pcfrl_bench.errors import UnknownNameError
    from pcfrl_bench.models.backbones import build_backbone
    with pytest.raises(UnknownNameError, match="Did you mean 'resnet18'") as err:
        build_backbone(ModelConfig(backbone="timm:resnet1888"))
    assert len(str(err.value)) < 300 and "timm.list_models()" in str(err.value)

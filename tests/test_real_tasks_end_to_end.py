"""``pcfrl-bench run`` through the CLI on fixtures, one task per protocol family (smoke preset, tiny backbone)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import fixtures_real as fx
from pcfrl_bench.cli import main
from test_real_tasks import make_fixture


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """One data root with the four fixtures and a shared cache (the digits pretraining is reused)."""
    root = tmp_path_factory.mktemp("e2e")
    for task in ("rafdb", "cplfw", "disfa", "aflw2000"):
        make_fixture(task, root / "data")
    fx.write_imagefolder(root / "data" / "images", classes=("a", "b"), per_class=8)
    fx.write_voxceleb(root / "data" / "VoxCeleb", frames=3)
    return root


def _run(root, task: str, *extra: str, seed: int = 0) -> dict:
    args = ["run", "-m", "simclr", "-t", task, "--preset", "smoke", "--seed", str(seed), "--set", "model.backbone=timm:test_resnet",
            "--data-root", str(root / "data"), "--out", str(root / "runs"), "--cache-dir", str(root / "cache"),
            "--no-progress", *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    [path] = (root / "runs" / task / "simclr").glob(f"smoke-seed{seed}-*.json")  # --set runs: named by config hash
    return json.loads(path.read_text())


def test_classification_rafdb_pretrained_on_imagefolder(workspace):
    record = _run(workspace, "rafdb", "--set", "data.source=imagefolder", "--set", "pretrain.batch_size=8")
    assert record["protocol"] == "classification" and record["metric"] == "accuracy"
    assert set(record["metrics"]) == {"accuracy"} and 0 <= record["metrics"]["accuracy"] <= 100
    assert record["counts"] == {"train": 7, "test": 7}
    assert record["config"]["data"]["source"] == "imagefolder" and record["config"]["eval"]["image_size"] == 16


def test_verification_cplfw(workspace):
    record = _run(workspace, "cplfw", "--set", "data.source=digits")
    assert record["protocol"] == "verification" and record["metric"] == "accuracy"
    assert {"accuracy", "accuracy_std", "accuracy_sem"} <= set(record["metrics"])
    assert {f"fold{k}_accuracy" for k in range(1, 11)} <= set(record["metrics"])
    assert record["counts"] == {"images": 20, "pairs": 20, "folds": 10}
    # each image's features extracted once: the cached test split holds 20 rows, not 40
    cached = list((workspace / "cache" / "features").rglob("cplfw-*-test-16px.pt"))
    assert len(cached) == 1 and torch.load(cached[0], weights_only=True)["features"].shape[0] == 20


def test_au_detection_disfa(workspace):
    record = _run(workspace, "disfa", "--set", "data.source=digits")
    assert record["protocol"] == "au_detection" and record["metric"] == "f1"
    aus = {f"f1_AU{a}" for a in (1, 2, 4, 6, 9, 12, 25, 26)}
    assert set(record["metrics"]) == {"f1", "map", "fold1_f1", "fold2_f1", "fold3_f1"} | aus
    assert set(record["best_over_epochs"]) == {"f1", "map"} | aus and 1 <= record["best_epoch"] <= 5
    assert set(record["trivial"]) == {"f1", "map"}
    assert record["counts"]["folds"] == 3 and record["counts"]["fold2_test"] == 6


def test_head_pose_aflw2000(workspace):
    record = _run(workspace, "aflw2000", "--set", "data.source=digits")
    assert record["protocol"] == "head_pose" and record["metric"] == "mae" and record["higher_is_better"] is False
    assert set(record["metrics"]) == {"mae", "mae_yaw", "mae_pitch", "mae_roll"}
    assert record["counts"] == {"train": 3, "train_filtered": 0, "test": 2, "test_filtered": 0}  # reader filtered
    assert record["best_over_epochs"]["mae"] <= record["metrics"]["mae"]


def test_face_task_pretrains_on_voxceleb_by_default(workspace):
    record = _run(workspace, "rafdb", "--set", "pretrain.batch_size=4", seed=1)
    assert record["config"]["data"]["source"] == "voxceleb" and record["config"]["data"]["image_size"] == 16
    run_dir = Path(record["checkpoint"])
    assert "source: voxceleb" in (run_dir / "config.yaml").read_text()
    rows = [json.loads(r) for r in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all(math.isfinite(r["loss"]) for r in rows)


def test_feature_extraction_with_workers_matches_main_process(workspace):
    from pcfrl_bench.evaluation.features import extract_features
    from pcfrl_bench.runner import default_task

    dataset = default_task("rafdb", workspace / "data").splits(16)["train"]
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1))
    cpu = torch.device("cpu")
    main_process = extract_features(encoder, dataset, 3, cpu, num_workers=0, progress=False)
    workers = extract_features(encoder, dataset, 3, cpu, num_workers=2, progress=False)
    assert torch.equal(main_process.features, workers.features) and main_process.features.shape[0] == 7
    assert main_process.targets.keys() == workers.targets.keys()
    assert all(torch.equal(main_process.targets[k], workers.targets[k]) for k in workers.targets)

"""Protocol families on hand-made features whose answer is known."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from pcfrl_bench.catalog import Entry
from pcfrl_bench.config import EmptyParams, EvalConfig, ProbeConfig
from pcfrl_bench.evaluation.features import FeatureSet
from pcfrl_bench.evaluation.probes import ProbeResult
from pcfrl_bench.tasks.families import (
    AUDetectionTask,
    HeadPoseTask,
    VerificationTask,
    au_f1_metric,
    average_fold_results,
    head_pose_metric,
    verification_metrics,
)
from pcfrl_bench.errors import ConfigError
from pcfrl_bench.evaluation.protocols import fold_centred_pair_scores, verification_accuracy_10fold

CPU = torch.device("cpu")


def _entry(name: str) -> Entry:
    return Entry("task", name, "", name)


class PairTask(VerificationTask):
    def __init__(self, pairs, same, fold):
        super().__init__(_entry("pairs"), EmptyParams(), Path("."))
        self._lists = (np.asarray(pairs), np.asarray(same, bool), np.asarray(fold))

    def pair_lists(self):
        return self._lists


def _unit(angle: float) -> list[float]:
    return [math.cos(angle), math.sin(angle)]


def test_verification_threshold_from_other_fold_by_hand():
    # pair cosines: fold 0 (same 0.9, diff 0.1), fold 1 (same 0.8, diff 0.85)
    # fold 0 tested with the threshold of fold 1 (t = 0.8, ties -> smallest) -> 2/2; fold 1 with t = 0.9 -> 1/2
    cosines = [0.9, 0.1, 0.8, 0.85]
    feats = []
    for c in cosines:
        feats += [_unit(0.0), _unit(math.acos(c))]
    pairs = [[0, 1], [2, 3], [4, 5], [6, 7]]
    task = PairTask(pairs, [True, False, True, False], [0, 0, 1, 1])
    fs = FeatureSet(torch.tensor(feats), {})
    r = task.evaluate({"test": fs}, EvalConfig(), 0, CPU)
    assert r.metrics["accuracy"] == pytest.approx(75.0)
    assert r.metrics["accuracy_std"] == pytest.approx(25.0)
    assert r.metrics["fold1_accuracy"] == pytest.approx(100.0) and r.metrics["fold2_accuracy"] == pytest.approx(50.0)
    assert r.best_over_epochs == r.metrics and r.counts == {"images": 8, "pairs": 4, "folds": 2}


def test_verification_uses_index_target_to_place_rows():
    # same-identity pairs share a vector; rows are stored in reverse order with their sample positions
    base = torch.tensor([_unit(0.0), _unit(0.0), _unit(1.5), _unit(1.5), _unit(0.3), _unit(2.0)] * 2)
    pairs = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]]
    same, fold = [True, True, False, True, True, False], [0, 0, 0, 1, 1, 1]
    rev = torch.arange(12).flip(0)
    fs = FeatureSet(base[rev], {"index": rev})
    r = PairTask(pairs, same, fold).evaluate({"test": fs}, EvalConfig(), 0, CPU)
    assert r.metrics["accuracy"] == pytest.approx(100.0)
    shuffled = FeatureSet(base[rev], {})  # without the index the rows are misplaced and the answer changes
    assert PairTask(pairs, same, fold).evaluate({"test": shuffled}, EvalConfig(), 0, CPU).metrics["accuracy"] < 100


def test_verification_centring_option_scores_with_the_threshold_folds_mean():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((40, 3)) + np.array([4.0, 0.0, 0.0])  # a shared direction dominates the cosine
    pairs, same, fold = np.arange(40).reshape(20, 2), rng.random(20) < 0.5, np.repeat(np.arange(10), 2)
    cfg = EvalConfig(verification_center="train_folds")
    r = PairTask(pairs, same, fold).evaluate({"test": FeatureSet(torch.tensor(feats), {})}, cfg, 0, CPU)
    expected = verification_accuracy_10fold(fold_centred_pair_scores(feats, pairs, fold), same, fold)
    assert r.metrics["accuracy"] == pytest.approx(100 * expected["accuracy_mean"])
    assert r.metrics["accuracy"] != pytest.approx(verification_metrics(feats, pairs, same, fold)["accuracy"])
    with pytest.raises(ConfigError, match="train_folds"):
        verification_metrics(feats, pairs, same, fold, center="mean")


def test_au_f1_metric_by_hand():
    logits = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    m = au_f1_metric(["AU1", "AU2"])(logits, targets)
    # AU1: pred 1,1,0 vs 1,0,1 -> tp 1 fp 1 fn 1 -> F1 2/4; AU2: perfect.
    # AP of AU1: scores 1 (+), 1 (-) tie, then -1 (+): recall 1/2 at precision 1/2, recall 1 at precision 2/3
    ap1 = 0.5 * 0.5 + 0.5 * 2 / 3
    assert m == pytest.approx({"f1": 75.0, "f1_AU1": 50.0, "f1_AU2": 100.0, "map": 100 * (ap1 + 1) / 2})


def test_average_fold_results_picks_the_fold_averaged_best_epoch():
    def fold(values):
        h = [{"f1": v, "f1_AU1": v / 2} for v in values]
        return ProbeResult(h[-1], max(h, key=lambda d: d["f1"]), 0, values, h)

    final, best, epoch = average_fold_results([fold([10, 30, 20]), fold([40, 10, 20])], "f1", True)
    # per-epoch means 25, 20, 20: epoch 1 is best although each fold peaks elsewhere
    assert final == {"f1": 20.0, "f1_AU1": 10.0} and best == {"f1": 25.0, "f1_AU1": 12.5} and epoch == 1
    _, best, epoch = average_fold_results([fold([10, 30, 20]), fold([40, 10, 20])], "f1", False)
    assert epoch == 2 and best["f1"] == 20.0


class AUs(AUDetectionTask):
    aus = (1, 2, 4)

    def __init__(self):
        super().__init__(_entry("aus"), EmptyParams(), Path("."))


def test_au_task_three_subject_folds_on_separable_features():
    # DISFA subjects from the three JAA-Net parts: (2, 10, 1) part 1, (13, 18, 11) part 2, (3, 29, 23) part 3
    subjects = np.repeat([2, 10, 1, 13, 18, 11, 3, 29, 23], 8)
    rng = np.random.default_rng(0)
    aus = (rng.random((len(subjects), 3)) < 0.5).astype(np.float32)
    x = torch.from_numpy(np.concatenate([aus * 2 - 1, rng.normal(size=(len(aus), 5)) * 0.1], 1)).float()
    fs = FeatureSet(x, {"aus": torch.from_numpy(aus), "subject": torch.from_numpy(subjects)})
    cfg = EvalConfig(probe=ProbeConfig(head="bn_linear", epochs=25, batch_size=24, lr=5e-2, normalize="none"))
    r = AUs().evaluate({"all": fs}, cfg, 0, CPU)
    assert set(r.metrics) == {"f1", "map", "f1_AU1", "f1_AU2", "f1_AU4", "fold1_f1", "fold2_f1", "fold3_f1"}
    assert r.metrics["f1"] > 95 and r.best_over_epochs["f1"] >= r.metrics["f1"] - 1e-9
    assert r.counts["folds"] == 3 and r.counts["subjects"] == 9
    assert all(r.counts[f"fold{k}_test"] == 24 and r.counts[f"fold{k}_train"] == 48 for k in (1, 2, 3))


class Pose(HeadPoseTask):
    def __init__(self):
        super().__init__(_entry("pose"), EmptyParams(), Path("."))


def test_head_pose_metric_by_hand():
    pred = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    m = head_pose_metric(pred, torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 6.0]]))
    assert m == pytest.approx({"mae": 2.0, "mae_yaw": 0.5, "mae_pitch": 1.0, "mae_roll": 4.5})


def test_head_pose_task_filters_both_sets_and_regresses_angles():
    rng = np.random.default_rng(1)

    def split(n, outliers):
        angles = rng.uniform(-60, 60, size=(n, 3))
        angles[:outliers, 0] = 150.0  # |yaw| > 99: dropped
        x = np.concatenate([angles / 30.0, rng.normal(size=(n, 3)) * 0.01], 1)
        x[:outliers] = 1e3  # outliers would ruin the fit if kept
        return FeatureSet(torch.tensor(x, dtype=torch.float32), {"angles": torch.tensor(angles, dtype=torch.float32)})

    cfg = EvalConfig(probe=ProbeConfig(head="bn_linear", epochs=100, batch_size=48, optimizer="adamw", lr=1e-1,
                                       weight_decay=0.0, scheduler="cosine"))
    r = Pose().evaluate({"train": split(96, 3), "test": split(40, 2)}, cfg, 0, CPU)
    assert r.counts == {"train": 93, "train_filtered": 3, "test": 38, "test_filtered": 2}
    assert set(r.metrics) == {"mae", "mae_yaw", "mae_pitch", "mae_roll"}
    assert r.metrics["mae"] < 3.0 and r.best_over_epochs["mae"] <= r.metrics["mae"]

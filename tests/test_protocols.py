"""Protocol functions against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from pcfrl_bench.data.readers.disfa import au_subject_folds
from pcfrl_bench.data.readers.headpose import head_pose_filter
from pcfrl_bench.evaluation.protocols import (
    au_f1_report,
    best_threshold,
    cosine_pair_scores,
    f1_per_label,
    fold_centred_pair_scores,
    mae_per_angle,
    verification_accuracy_10fold,
)


def test_verification_10fold_hand_computed():
    # folds 0..8: positive 0.9, negative 0.1; fold 9 inverted: positive 0.3, negative 0.5.
    scores = np.array([0.9, 0.1] * 9 + [0.3, 0.5])
    same = np.array([True, False] * 10)
    fold = np.repeat(np.arange(10), 2)
    r = verification_accuracy_10fold(scores, same, fold)
    # Held-out fold k<9: on the other folds t=0.3 and t=0.9 both reach 17/18; the smaller (0.3) is chosen,
    # giving 1.0 on fold k. Held-out fold 9: t=0.9 is perfect on the rest; on fold 9 only the negative is right.
    assert r["thresholds"] == pytest.approx([0.3] * 9 + [0.9])
    assert r["fold_accuracies"] == pytest.approx([1.0] * 9 + [0.5])
    assert r["accuracy_mean"] == pytest.approx(0.95)
    assert r["accuracy_std"] == pytest.approx(0.15)
    assert r["accuracy_sem"] == pytest.approx(np.std([1.0] * 9 + [0.5], ddof=1) / np.sqrt(10))


def test_best_threshold_counts_ties_and_all_different():
    t, acc = best_threshold(np.array([0.2, 0.2, 0.8]), np.array([False, True, True]))
    assert (t, acc) == (pytest.approx(0.2), pytest.approx(2 / 3))  # t=0.8 also 2/3: smallest wins
    t, acc = best_threshold(np.array([0.5, 0.6]), np.array([False, False]))
    assert t == np.inf and acc == 1.0


def test_verification_rejects_shape_mismatch():
    with pytest.raises(ValueError):
        verification_accuracy_10fold(np.zeros(4), np.zeros(3, bool), np.zeros(4))


def test_fold_centred_scores_use_only_the_threshold_folds():
    f = np.array([[1.0, 0.0], [5.0, 0.0], [2.0, 1.0], [2.0, -1.0]])
    pairs, fold = np.array([[0, 1], [2, 3]]), np.array([0, 1])
    s = fold_centred_pair_scores(f, pairs, fold)
    # fold 0 held out: mean of images 2, 3 = (2, 0) -> (-1,0)·(3,0) = -1 and (0,1)·(0,-1) = -1
    # fold 1 held out: mean of images 0, 1 = (3, 0) -> (-2,0)·(2,0) = -1 and (-1,1)·(-1,-1) = 0
    assert s == pytest.approx(np.array([[-1.0, -1.0], [-1.0, 0.0]]))


def test_verification_10fold_takes_one_score_row_per_held_out_fold():
    scores = np.array([[0.9, 0.1, 0.8, 0.2],  # fold 0 held out: t = 0.8 from fold 1, fold 0 all right
                       [0.3, 0.5, 0.6, 0.4]])  # fold 1 held out: t = 0.3 from fold 0 (tie with inf), 1 of 2 right
    r = verification_accuracy_10fold(scores, np.array([True, False, True, False]), np.array([0, 0, 1, 1]))
    assert r["thresholds"] == pytest.approx([0.8, 0.3]) and r["fold_accuracies"] == pytest.approx([1.0, 0.5])
    with pytest.raises(ValueError):
        verification_accuracy_10fold(scores[:1], np.array([True, False, True, False]), np.array([0, 0, 1, 1]))


def test_cosine_pair_scores():
    f = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    s = cosine_pair_scores(f, np.array([[0, 1], [0, 2], [2, 2]]))
    assert s == pytest.approx([0.0, 1 / np.sqrt(2), 1.0])


def test_au_subject_folds_fixed_disfa_partition():
    # datasets.md §5: SN001, SN002 in part1; SN013, SN018 in part2; SN003, SN004 in part3
    folds = au_subject_folds(np.array([1, 2, 3, 13, 18, 4, 1]))
    assert folds.tolist() == [0, 0, 2, 1, 1, 2, 0]
    assert au_subject_folds(np.array(["SN001", "SN013", "SN029"])).tolist() == [0, 1, 2]


def test_au_subject_folds_fallback_is_subject_exclusive():
    subjects = np.array(["d", "a", "b", "c", "a", "d"])
    folds = au_subject_folds(subjects)
    assert folds.tolist() == [0, 0, 1, 2, 0, 0]  # sorted a,b,c,d -> 0,1,2,0
    folds = au_subject_folds(np.array([1, 2, 3, 4]), n_folds=2)  # DISFA ids but not 3 folds -> fallback
    assert folds.tolist() == [0, 1, 0, 1]
    assert au_subject_folds(np.array([1, 999])).tolist() == [0, 1]  # 999 is not a DISFA subject


def test_f1_per_label_hand_computed():
    pred = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 1, 0]])
    target = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]])
    f1 = f1_per_label(pred, target)
    assert f1 == pytest.approx([0.5, 2 / 3, 0.0])  # col0 tp1 fp1 fn1; col1 tp1 fp1 fn0; col2 undefined -> 0
    rep = au_f1_report(pred, target, (1, 2, 4))
    assert rep["AU2"] == pytest.approx(2 / 3) and rep["mean"] == pytest.approx((0.5 + 2 / 3) / 3)


def test_head_pose_filter_and_mae():
    angles = np.array([[99.0, 0, 0], [-99.01, 0, 0], [0, 100, 0], [0, 0, -50], [np.nan, 0, 0]])
    assert head_pose_filter(angles).tolist() == [True, False, False, True, False]
    assert head_pose_filter(angles, limit=120).tolist() == [True, True, True, True, False]
    m = mae_per_angle(np.array([[0, 0, 0], [10, -10, 4]]), np.array([[1, 2, 3], [10, 10, 0]]))
    assert m == pytest.approx({"yaw": 0.5, "pitch": 11.0, "roll": 3.5, "mean": 5.0})

"""Evaluation protocols shared by the real and synthetic tasks: pure, vectorised numpy functions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ANGLE_NAMES = ("yaw", "pitch", "roll")


def cosine_pair_scores(features: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Cosine similarity of features[pairs[:,0]] and features[pairs[:,1]] (docs/design.md: FR by cosine)."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    p = np.asarray(pairs, dtype=np.int64)
    return np.einsum("ij,ij->i", f[p[:, 0]], f[p[:, 1]])


def fold_centred_pair_scores(features: np.ndarray, pairs: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """(K, P) cosine scores: row k after subtracting the mean feature of the images in the pairs of every fold
    but the k-th of ``np.unique(fold)`` (the folds that choose fold k's threshold; no test-fold statistics)."""
    f = np.asarray(features, dtype=np.float64)
    p = np.asarray(pairs, dtype=np.int64)
    fold = np.asarray(fold)
    rows = []
    for k in np.unique(fold):  # loop over the folds only
        images = np.unique(p[fold != k].reshape(-1))
        rows.append(cosine_pair_scores(f - f[images].mean(0), p))
    return np.stack(rows)


def _accuracy_at(scores: np.ndarray, same: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Accuracy of 'same iff score >= t' for every t, via sorted scores (no loop over pairs)."""
    pos, neg = np.sort(scores[same]), np.sort(scores[~same])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    tn = np.searchsorted(neg, thresholds, side="left")
    return (tp + tn) / max(len(scores), 1)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """Threshold among the sorted unique scores (and +inf) with the highest accuracy; ties -> smallest."""
    candidates = np.append(np.unique(scores), np.inf)
    acc = _accuracy_at(scores, same, candidates)
    k = int(np.argmax(acc))
    return float(candidates[k]), float(acc[k])


def verification_accuracy_10fold(scores: np.ndarray, same: np.ndarray, fold: np.ndarray) -> dict:
    """LFW View-2 protocol (README 'Test procedure', datasets.md §3): per fold, the accuracy-maximising threshold
    on the other folds is applied to the held-out fold. Pairs with score >= threshold are called 'same'.
    ``scores`` is (P,), or (folds, P) with row k used when the k-th of ``np.unique(fold)`` is held out
    (:func:`fold_centred_pair_scores`).

    Returns accuracy_mean, accuracy_std (population std, as insightface), accuracy_sem (std(ddof=1)/sqrt(k),
    as FaceX-Zoo), fold_accuracies and thresholds.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    fold = np.asarray(fold)
    folds = np.unique(fold)
    per_fold = scores if scores.ndim == 2 else np.broadcast_to(scores, (len(folds), *scores.shape))
    if not (per_fold.shape[1:] == same.shape == fold.shape) or len(per_fold) != len(folds):
        raise ValueError("scores (P,) or (folds, P), same (P,) and fold (P,) do not match")
    if len(folds) < 2:
        raise ValueError("verification_accuracy_10fold needs at least two folds")
    accs, thresholds = [], []
    for k, s in zip(folds, per_fold):  # loop over the 10 folds only
        test = fold == k
        t, _ = best_threshold(s[~test], same[~test])
        accs.append(float(np.mean((s[test] >= t) == same[test])))
        thresholds.append(t)
    a = np.asarray(accs)
    return {
        "accuracy_mean": float(a.mean()),
        "accuracy_std": float(a.std()),
        "accuracy_sem": float(a.std(ddof=1) / np.sqrt(len(a))),
        "fold_accuracies": accs,
        "thresholds": thresholds,
    }


def f1_per_label(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """F1 of each column of binary (N,L) predictions (PCFRL Sec. 4.2.1, F1 per AU); 0 where undefined."""
    from sklearn.metrics import f1_score  # imported when used: sklearn is slow to import

    p = np.asarray(pred).astype(bool).reshape(len(pred), -1)
    t = np.asarray(target).astype(bool).reshape(len(target), -1)
    return f1_score(t, p, average=None, zero_division=0.0)


def au_f1_report(pred: np.ndarray, target: np.ndarray, aus: Sequence[int]) -> dict[str, float]:
    """{'AU1': f1, ..., 'mean': mean F1} (PCFRL Table: F1 per AU and average)."""
    f1 = f1_per_label(pred, target)
    out = {f"AU{a}": float(v) for a, v in zip(aus, f1)}
    out["mean"] = float(f1.mean())
    return out


def mae_per_angle(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean absolute error in degrees per angle (yaw, pitch, roll columns) and their mean (Hopenet metric)."""
    err = np.abs(np.asarray(pred, np.float64) - np.asarray(target, np.float64)).reshape(-1, 3).mean(axis=0)
    out = {name: float(e) for name, e in zip(ANGLE_NAMES, err)}
    out["mean"] = float(err.mean())
    return out


def classification_accuracy(pred: np.ndarray, target: np.ndarray) -> float:
    """Top-1 accuracy of predicted class ids."""
    return float(np.mean(np.asarray(pred) == np.asarray(target)))


# ------------------------------------------------------------------------ trivial baselines (the floor of each metric)


def majority_class_accuracy(train_labels: Sequence, test_labels: Sequence) -> float:
    """Accuracy in percent of predicting the training split's most frequent class for every test sample."""
    train, test = np.asarray(train_labels).astype(np.int64), np.asarray(test_labels).astype(np.int64)
    return 100.0 * float(np.mean(test == np.bincount(train).argmax()))


def median_angles_mae(train_angles: np.ndarray, test_angles: np.ndarray) -> dict[str, float]:
    """MAE per angle and mean of predicting the training split's median (yaw, pitch, roll) for every test face."""
    median = np.median(np.asarray(train_angles, np.float64).reshape(-1, 3), axis=0)
    test = np.asarray(test_angles, np.float64).reshape(-1, 3)
    return mae_per_angle(np.broadcast_to(median, test.shape), test)


def mean_average_precision(scores: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Threshold-free AU metric: average precision of each column's scores (NaN where a column has no positive)
    and their mean over the defined columns, in [0, 1] (sklearn's step-wise AP)."""
    from sklearn.metrics import average_precision_score

    s, t = np.asarray(scores, np.float64), np.asarray(target).astype(bool)
    ap = np.array([average_precision_score(t[:, j], s[:, j]) if t[:, j].any() else np.nan for j in range(t.shape[1])])
    defined = ap[~np.isnan(ap)]
    return (float(defined.mean()) if len(defined) else float("nan")), ap

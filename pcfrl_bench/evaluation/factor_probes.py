"""Linear probes of ground-truth factors on frozen features: what a representation encodes.

Each factor of the synthetic world (expression, AUs, identity, head pose, light, background, clip) is decoded
from the same features by a linear model fitted on a training split and scored on a held-out split:
classification factors by a least-squares (ridge, one-hot) classifier, scored as accuracy and as *decodability*
(acc - chance) / (1 - chance) with chance the majority-class accuracy of the test split; continuous factors
by ridge regression (penalty chosen by leave-one-out error on the training split), scored as the test R^2 averaged
over the factor's outputs. Decodability and R^2 share one scale: 0 = nothing beyond chance, 1 = perfect.
Features are standardised on the training split; beyond ``max_dims`` dimensions they are reduced by PCA fitted
on the training split, so raw pixels and wide trunks are probed at the same cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DIMS = 512
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)


@dataclass(frozen=True)
class FactorSpec:
    """One factor: its kind and the split it is probed on (train / test row masks come with the data)."""

    name: str
    kind: str  # "class" or "regression"
    split: str  # name of the split in the data's ``splits``


@dataclass(frozen=True)
class FactorScore:
    name: str
    kind: str
    score: float  # decodability (classes) or R^2 (regression): 0 = chance, 1 = perfect
    raw: float  # accuracy (classes) or R^2 (regression)
    chance: float  # majority-class accuracy (classes) or 0 (regression)
    n_train: int
    n_test: int


def principal_axes(x: np.ndarray, k: int) -> np.ndarray:
    """(D, k) top-k principal axes of centred rows ``x`` (n, D), from the n x n Gram matrix when n < D (PCA in
    O(n^2 D): seconds for a few thousand raw 64-px images, where a D x D covariance or a full SVD takes minutes)."""
    x = x.astype(np.float32)
    if x.shape[0] >= x.shape[1]:
        _, vecs = np.linalg.eigh(x.T @ x)
        return vecs[:, ::-1][:, :k].astype(np.float64)
    vals, u = np.linalg.eigh(x @ x.T)
    vals, u = vals[::-1][:k], u[:, ::-1][:, :k]
    axes = x.T @ (u / np.sqrt(np.maximum(vals, 1e-12)))
    return axes.astype(np.float64)


def prepare(train: np.ndarray, test: np.ndarray, max_dims: int = MAX_DIMS) -> tuple[np.ndarray, np.ndarray]:
    """Standardise on the training rows; project onto their top ``max_dims`` principal axes when wider."""
    mean, std = train.mean(0), train.std(0)
    std = np.where(std > 1e-8, std, 1.0)
    train, test = (train - mean) / std, (test - mean) / std
    if train.shape[1] > max_dims:
        axes = principal_axes(train, min(max_dims, train.shape[0]))
        train, test = train @ axes, test @ axes
    return train.astype(np.float64), test.astype(np.float64)


def classification_score(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                         test_y: np.ndarray) -> tuple[float, float]:
    """(accuracy, majority-class chance on the test split) of a least-squares classifier: :func:`ridge_fit` on
    one-hot targets, the class of the largest output (closed form: seconds where iterative logistic regression
    over a hundred classes takes minutes on a busy CPU)."""
    values, counts = np.unique(test_y, return_counts=True)
    chance = float(counts.max() / counts.sum())
    classes = np.unique(train_y)
    if len(classes) < 2:
        return chance, chance
    onehot = (train_y[:, None] == classes[None, :]).astype(np.float64)
    w, b, _ = ridge_fit(train_x, onehot)
    pred = classes[(test_x @ w + b).argmax(1)]
    return float((pred == test_y).mean()), chance


def ridge_fit(train_x: np.ndarray, train_y: np.ndarray, alphas: tuple[float, ...] = RIDGE_ALPHAS
              ) -> tuple[np.ndarray, np.ndarray, float]:
    """(weights (D, K), intercept (K,), chosen alpha) of ridge regression with an unpenalised intercept, the penalty
    chosen by the closed-form leave-one-out error on the training rows (one eigendecomposition of X^T X for all
    alphas; the leave-one-out residuals of the centred problem)."""
    mean_x, mean_y = train_x.mean(0), train_y.mean(0)
    train_x, y = train_x - mean_x, train_y - mean_y
    s, v = np.linalg.eigh(train_x.T @ train_x)
    s = np.maximum(s, 0.0)
    xv = train_x @ v  # (n, D)
    xty = v.T @ (train_x.T @ y)  # (D, K)
    best = (np.inf, alphas[0])
    for alpha in alphas:
        inv = 1.0 / (s + alpha)
        pred = xv @ (inv[:, None] * xty)
        hat = (xv ** 2) @ inv + 1.0 / len(y)  # diagonal of the hat matrix (the intercept adds 1/n)
        loo = ((y - pred) / np.maximum(1.0 - hat, 1e-9)[:, None]) ** 2
        best = min(best, (float(loo.mean()), alpha))
    inv = 1.0 / (s + best[1])
    w = v @ (inv[:, None] * xty)
    return w, mean_y - mean_x @ w, best[1]


def regression_score(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Test R^2 of ridge regression (:func:`ridge_fit`), averaged over the outputs that vary (uniform average)."""
    train_y = train_y.reshape(len(train_y), -1).astype(np.float64)
    test_y = test_y.reshape(len(test_y), -1).astype(np.float64)
    keep = test_y.std(0) > 1e-8
    if not keep.any():
        return 0.0
    w, b, _ = ridge_fit(train_x, train_y[:, keep])
    pred, truth = test_x @ w + b, test_y[:, keep]
    ss_res = ((truth - pred) ** 2).sum(0)
    ss_tot = ((truth - truth.mean(0)) ** 2).sum(0)
    return float(np.mean(1.0 - ss_res / ss_tot))


def probe_factors(features: np.ndarray, labels: dict[str, np.ndarray], splits: dict[str, np.ndarray],
                  specs: tuple[FactorSpec, ...], max_dims: int = MAX_DIMS) -> list[FactorScore]:
    """Score every factor of ``specs``; ``splits[name]`` is an int array per row: 0 = train, 1 = test, -1 = unused."""
    out, prepared = [], {}
    for spec in specs:
        split = splits[spec.split]
        if spec.split not in prepared:
            prepared[spec.split] = prepare(features[split == 0], features[split == 1], max_dims)
        tr, te = prepared[spec.split]
        y_tr, y_te = labels[spec.name][split == 0], labels[spec.name][split == 1]
        if spec.kind == "class":
            acc, chance = classification_score(tr, y_tr, te, y_te)
            score = (acc - chance) / (1 - chance) if chance < 1 else 0.0
            out.append(FactorScore(spec.name, spec.kind, score, acc, chance, len(y_tr), len(y_te)))
        else:
            r2 = regression_score(tr, y_tr, te, y_te)
            out.append(FactorScore(spec.name, spec.kind, r2, r2, 0.0, len(y_tr), len(y_te)))
    return out


__all__ = ["FactorScore", "FactorSpec", "MAX_DIMS", "classification_score", "prepare", "principal_axes", "probe_factors",
           "regression_score", "ridge_fit"]

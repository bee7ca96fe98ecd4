"""Factor probes (``analyze --factors``): the probe math against hand computation, the probe data's splits, and
one small end-to-end run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pcfrl_bench.data.synthetic import WorldStyle
from pcfrl_bench.data.synthetic.world import FACTOR_NAMES, factor_probe_data
from pcfrl_bench.evaluation.factor_probes import (
    FactorSpec, classification_score, prepare, principal_axes, probe_factors, regression_score, ridge_fit,
)


def test_ridge_fit_matches_the_normal_equations_and_picks_the_leave_one_out_best():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)) + 1.5
    y = x @ rng.standard_normal((5, 2)) + 0.1 * rng.standard_normal((60, 2)) + 3.0
    w, b, alpha = ridge_fit(x, y, alphas=(0.5, 50.0))
    xc = x - x.mean(0)
    expected = np.linalg.solve(xc.T @ xc + alpha * np.eye(5), xc.T @ (y - y.mean(0)))
    np.testing.assert_allclose(w, expected, atol=1e-10)
    np.testing.assert_allclose(b, y.mean(0) - x.mean(0) @ expected, atol=1e-10)
    # brute-force leave-one-out for each alpha: the chosen one has the smaller error
    def loo(a: float) -> float:
        errs = []
        for i in range(len(x)):
            keep = np.arange(len(x)) != i
            xm, ym = x[keep], y[keep]
            mx, my = xm.mean(0), ym.mean(0)
            wi = np.linalg.solve((xm - mx).T @ (xm - mx) + a * np.eye(5), (xm - mx).T @ (ym - my))
            errs.append(((y[i] - (my + (x[i] - mx) @ wi)) ** 2).mean())
        return float(np.mean(errs))
    assert alpha == min((0.5, 50.0), key=loo)


def test_principal_axes_span_the_top_singular_vectors():
    rng = np.random.default_rng(1)
    for shape in ((30, 80), (80, 30)):  # Gram path (n < D) and covariance path
        x = rng.standard_normal(shape)
        x -= x.mean(0)
        axes = principal_axes(x, 4)
        _, _, vt = np.linalg.svd(x, full_matrices=False)
        np.testing.assert_allclose(np.abs(np.sum(axes * vt[:4].T, 0)), 1.0, atol=1e-4)


def test_prepare_standardises_on_train_and_caps_the_width():
    rng = np.random.default_rng(2)
    train, test = rng.standard_normal((40, 100)) * 5 + 2, rng.standard_normal((10, 100))
    tr, te = prepare(train, test, max_dims=8)
    assert tr.shape == (40, 8) and te.shape == (10, 8)
    tr, _ = prepare(train, test, max_dims=200)
    np.testing.assert_allclose(tr.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(tr.std(0), 1, atol=1e-12)


def test_scores_are_one_for_a_decodable_factor_and_near_zero_for_noise():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 6))
    cls = rng.integers(0, 4, 400)
    x[:, :4] += 4 * np.eye(4)[cls]  # four well-separated clusters
    acc, chance = classification_score(x[:300], cls[:300], x[300:], cls[300:])
    assert acc > 0.95 and chance == pytest.approx(np.bincount(cls[300:]).max() / 100)
    assert regression_score(x[:300], 2 * x[:300, 2], x[300:], 2 * x[300:, 2]) > 0.99
    noise = rng.standard_normal(400)
    assert abs(regression_score(x[:300], noise[:300], x[300:], noise[300:])) < 0.1


def test_probe_factors_uses_each_factors_split():
    rng = np.random.default_rng(4)
    n = 300
    feats = rng.standard_normal((n, 4))
    labels = {"a": (feats[:, 0] > 0).astype(int), "b": feats[:, 1] * 3}
    first = np.where(np.arange(n) < 200, 0, 1)
    splits = {"s": first, "t": np.where(np.arange(n) < 100, -1, first)}
    out = probe_factors(feats, labels, splits, (FactorSpec("a", "class", "s"), FactorSpec("b", "regression", "t")))
    assert [(s.name, s.n_train, s.n_test) for s in out] == [("a", 200, 100), ("b", 100, 100)]
    assert out[0].score == pytest.approx((out[0].raw - out[0].chance) / (1 - out[0].chance))
    assert out[1].score > 0.99


def test_factor_probe_data_splits_hold_out_people_faces_and_frames():
    images, labels, splits = factor_probe_data(16, seed=0, n=120, identities=10, clips=6, frames=4)
    assert images.shape == (120 + 24, 3, 16, 16)
    assert set(labels) == set(FACTOR_NAMES)
    face, clip = slice(0, 120), slice(120, None)
    # subject split: no person on both sides
    who = labels["identity"][face]
    assert not set(who[splits["subject"][face] == 0].tolist()) & set(who[splits["subject"][face] == 1].tolist())
    assert (splits["subject"][clip] == -1).all() and (splits["image"][clip] == -1).all()
    assert (splits["frame"][face] == -1).all()
    assert splits["frame"][clip].tolist() == [0, 1, 0, 1] * 6  # every other frame of each clip held out
    assert labels["clip"][clip].tolist() == [c for c in range(6) for _ in range(4)]


def test_world_style_renders_expressions_and_zoom_but_keeps_labels():
    plain = factor_probe_data(16, seed=0, n=20, identities=4, clips=2, frames=2)
    styled = factor_probe_data(16, seed=0, n=20, identities=4, clips=2, frames=2,
                               style=WorldStyle(expression_scale=3.0, zoom=1.3))
    assert torch.equal(plain[1]["aus"], styled[1]["aus"])  # labels unscaled
    assert not torch.allclose(plain[0], styled[0])
    assert WorldStyle().changes() == {} and WorldStyle(zoom=1.3).changes() == {"zoom": 1.3}


def test_analyze_factors_end_to_end(tmp_path):
    from rich.console import Console

    from pcfrl_bench.factor_analysis import analyze_factors, factor_table, write_factor_report
    from pcfrl_bench.runner import RunPaths

    paths = RunPaths(tmp_path / "runs", tmp_path / "cache", tmp_path / "data")
    report = analyze_factors("simclr", "synth-fer", "smoke", 0, (), paths, identities=8, n=160, clips=8,
                             frames=4, device="cpu", console=Console(quiet=True))
    assert list(report["scores"]) == ["simclr", "random-init", "raw-pixels"]
    rows = factor_table(report)
    assert rows[0] == ["factor", "simclr", "random-init", "raw-pixels"] and len(rows) == 1 + len(FACTOR_NAMES)
    path = write_factor_report(report, tmp_path / "analysis", "simclr-synth-fer-smoke-seed0")
    assert json.loads(path.read_text())["kind"] == "factor-probes"
    assert path.with_suffix(".png").is_file()

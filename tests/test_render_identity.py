"""The optimised renderer must stay bit-identical to the frozen pre-optimisation copy in _renderer_reference.py."""

from __future__ import annotations

import pytest
import torch

from pcfrl_bench.data.synthetic import renderer, sample_factors
import _renderer_reference as reference


@pytest.mark.parametrize("size", [32, 64, 100])
@pytest.mark.parametrize("batch,seed", [(1, 0), (7, 1), (64, 2), (300, 3)])
def test_render_faces_bit_identical(size: int, batch: int, seed: int) -> None:
    f = sample_factors(batch, seed=seed)
    new = renderer.render_faces({k: v.clone() for k, v in f.items()}, size)
    old = reference.render_faces({k: v.clone() for k, v in f.items()}, size)
    assert new.dtype == old.dtype and torch.equal(new, old)


def test_render_faces_generator_and_defaults_bit_identical() -> None:
    f = sample_factors(9, seed=5)
    new = renderer.render_faces(dict(f), 64, torch.Generator().manual_seed(3))
    old = reference.render_faces(dict(f), 64, torch.Generator().manual_seed(3))
    assert torch.equal(new, old)
    partial = {"yaw": torch.linspace(-60, 60, 5), "aus": torch.rand(5, 15, generator=torch.Generator().manual_seed(1)) * 5}
    assert torch.equal(renderer.render_faces(partial, 64), reference.render_faces(partial, 64))


def test_chunked_batch_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    f = sample_factors(50, seed=7)
    monkeypatch.setattr(renderer, "RENDER_CHUNK", 16)
    monkeypatch.setattr(reference, "RENDER_CHUNK", 16)
    assert torch.equal(renderer.render_faces(dict(f), 64), reference.render_faces(dict(f), 64))


def test_project_landmarks_identical() -> None:
    f = sample_factors(11, seed=4)
    assert torch.equal(renderer.project_landmarks(f, 64), reference.project_landmarks(f, 64))

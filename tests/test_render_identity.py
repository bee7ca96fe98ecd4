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
    aus = torch.rand(5, 15, generator=torch.Generator().manual_seed(1)) * 5
    partial = {"yaw": torch.linspace(-60, 60, 5), "aus": aus}
    assert torch.equal(renderer.render_faces(partial, 64), reference.render_faces(partial, 64))


def test_chunked_batch_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    f = sample_factors(50, seed=7)
    monkeypatch.setattr(renderer, "RENDER_CHUNK", 16)
    monkeypatch.setattr(reference, "RENDER_CHUNK", 16)
    assert torch.equal(renderer.render_faces(dict(f), 64), reference.render_faces(dict(f), 64))


def test_project_landmarks_identical() -> None:
    f = sample_factors(11, seed=4)
    assert torch.equal(renderer.project_landmarks(f, 64), reference.project_landmarks(f, 64))


def _patched_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    from pcfrl_bench.data.synthetic import world
    monkeypatch.setattr(world, "render_faces", reference.render_faces)


@pytest.mark.parametrize("kind", ["fer", "au", "hpe", "posecls", "fr"])
def test_synthetic_task_data_bit_identical(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pcfrl_bench.data.synthetic.world import synthetic_task_data
    new = synthetic_task_data(kind, "test", 48, 20, 0)
    _patched_reference(monkeypatch)
    old = synthetic_task_data(kind, "test", 48, 20, 0)
    assert new.keys() == old.keys() and all(torch.equal(new[k], old[k]) for k in new)


def test_synthetic_clips_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    from pcfrl_bench.data.synthetic import SyntheticClips, SyntheticWorld
    ds = SyntheticClips(SyntheticWorld(0, 100, 4, 16), image_size=64)
    new = ds.__getitems__(list(range(0, 60, 3)))
    _patched_reference(monkeypatch)
    old = ds.__getitems__(list(range(0, 60, 3)))
    assert len(new) == len(old)
    for a, b in zip(new, old):
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) if torch.is_tensor(a[k]) else a[k] == b[k] for k in a)


def test_edge_cases_bit_identical() -> None:
    empty = {"yaw": torch.zeros(0)}
    assert torch.equal(renderer.render_faces(empty, 64), reference.render_faces(empty, 64))
    off = {"yaw": torch.zeros(3), "tx": torch.tensor([5.0, -0.9, 0.0]), "scale": torch.tensor([1.0, 1.0, 0.05])}
    assert torch.equal(renderer.render_faces(off, 64), reference.render_faces(off, 64))

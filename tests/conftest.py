"""Shared fixtures: every test gets its own cache, result and data folders."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point the user cache and data root into the test's tmp folder."""
    monkeypatch.setenv("PCFRL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PCFRL_DATA", str(tmp_path / "data"))
    return tmp_path

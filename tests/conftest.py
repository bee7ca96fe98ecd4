"""Shared fixtures: every test gets its own cache, result and data folders."""

from __future__ import annotations

import pytest
import torch



@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread per test: the suite is many tiny ops, where a second thread on a busy 2-core
    machine makes them 10-50x slower (measured); the setting is restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Point the user cache and data root into the test's tmp folder."""
    monkeypatch.setenv("PCFRL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PCFRL_DATA", str(tmp_path / "data"))
    return tmp_path

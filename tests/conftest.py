"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A private results directory (``CODEXLAB_RESULTS_DIR``) for one test."""
    d = tmp_path / "results"
    monkeypatch.setenv("CODEXLAB_RESULTS_DIR", str(d))
    return d


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with one torch thread.

    Tiny models on a shared 2-core machine: intra-op threads only add synchronisation
    (measured 15x slower with 2 threads under load).
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

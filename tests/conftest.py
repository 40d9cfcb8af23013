"""Shared pytest fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A private results directory (``CODEXLAB_RESULTS_DIR``) for one test."""
    d = tmp_path / "results"
    monkeypatch.setenv("CODEXLAB_RESULTS_DIR", str(d))
    return d

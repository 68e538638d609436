"""Shared fixtures: every test writes into its own build folder, never into the checkout's build/."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def build_dir(tmp_path, monkeypatch):
    """Point LABKIT_OUT (metrics, models) and LABKIT_DATA_DIR at fresh temporary folders for each test."""
    out = tmp_path / "build"
    monkeypatch.setenv("LABKIT_OUT", str(out))
    monkeypatch.setenv("LABKIT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LABKIT_FAST", raising=False)
    return out

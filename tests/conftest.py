"""Shared fixtures: user dirs point at a temp dir; real data is found beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data next to the checkout, or $COLLAPSELAB_TEST_DATA."""
    env = os.environ.get("COLLAPSELAB_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    # No test may read or write the user's runs, caches or database, nor reach a hub.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(home / "cache"))
    monkeypatch.setenv("COLLAPSELAB_DB", f"sqlite:///{home / 'collapselab.db'}")
    monkeypatch.delenv("COLLAPSELAB_DATA", raising=False)
    monkeypatch.delenv("COLLAPSELAB_MODELS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))


@pytest.fixture
def shared_data() -> Path:
    """The real human datasets (integration tests). Missing data is a failure, not a skip."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.fail(f"real data not found at {d}; set COLLAPSELAB_TEST_DATA or check out ../shared")
    return d

"""Fixtures of the unit tests: tiny corpora written to the test's own folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import tiny_corpus, write_tiny_qa


@pytest.fixture
def tiny_lm_data(tmp_path: Path) -> Path:
    folder = tmp_path / "tinytext"
    folder.mkdir()
    for split, n, seed in (("train", 120, 1), ("test", 30, 2)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for d in tiny_corpus(n, seed, split):
                f.write(json.dumps(d) + "\n")
    return folder


@pytest.fixture
def tiny_qa_data(tmp_path: Path) -> Path:
    """A small extractive QA set (one unanswerable question per article), split by title."""
    return write_tiny_qa(tmp_path / "tinyqa")

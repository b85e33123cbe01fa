"""Fixtures of the unit tests: tiny corpora written to the test's own folder."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from tiny import ENDINGS, OBJECTS, SUBJECTS, VERBS, tiny_corpus


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
    folder = tmp_path / "tinyqa"
    folder.mkdir()
    rng = random.Random(5)
    for split, n in (("train", 40), ("test", 12)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for i in range(n):
                who, what = rng.choice(SUBJECTS), rng.choice(OBJECTS)
                context = f"{who.capitalize()} {rng.choice(VERBS)} {what} {rng.choice(ENDINGS)} Then it rained."
                rows = [
                    {"question": f"What did {who} see?", "answers": [what]},
                    {"question": "Who owned the moon?", "answers": []},
                ]
                for j, qa in enumerate(rows):
                    f.write(json.dumps({"id": f"{split}-{i}-{j}", "title": f"{split}-article-{i}", "context": context, **qa}) + "\n")
    return folder

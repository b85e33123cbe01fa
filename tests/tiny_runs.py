"""Real tiny engine runs, built once per test session for every test that reads results
(the report, the dashboard): a recursive lm run (2 arms, 2 seeds), a recursive qa run and
a three-arm refinery run. Tiny random models, generated data, no files beyond tmp.

Each run records into its own SQLite database; a test that wants several runs in one
database imports their run directories (`collapselab.store.import_run_dir`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

# tests/ is on sys.path (the root conftest's folder); the builders live with their tests.
from tiny import tiny_config, tiny_corpus
from unit.refinery.qa_fixtures import three_arm_config, write_tiny_qa


@dataclass(frozen=True, slots=True)
class TinyRun:
    run_dir: Path
    db: str  # the SQLite URL the engine recorded the run in


def isolate(mp: pytest.MonkeyPatch, home: Path) -> None:
    """What the autouse `_isolated_dirs` does per test, for session-scoped runs."""
    mp.setenv("COLLAPSELAB_CACHE", str(home / "cache"))
    mp.setenv("COLLAPSELAB_DB", f"sqlite:///{home / 'collapselab.db'}")
    mp.delenv("COLLAPSELAB_DATA", raising=False)
    mp.delenv("COLLAPSELAB_MODELS", raising=False)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        mp.setenv(name, "1")
    mp.setenv("HF_HOME", str(home / "hf"))


def _run(cfg: dict, db: str) -> Path:
    from collapselab.config import config_from_dict
    from collapselab.engine import run_experiment

    return run_experiment(config_from_dict(cfg), db_url=db)


def lm_run(home: Path) -> TinyRun:
    """replace vs accumulate, 2 generations, 2 seeds; the synthetic data scored per sequence."""
    folder = home / "text"
    folder.mkdir()
    for split, n, seed in (("train", 120, 1), ("test", 30, 2)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in tiny_corpus(n, seed, split)))
    cfg = tiny_config(folder, home / "runs", generations=2, seeds=[0, 1])
    cfg["evaluation"]["metrics"] += ["distinct_2", "duplicate_rate", "synthetic_perplexity"]
    db = f"sqlite:///{home / 'lm.db'}"
    return TinyRun(_run(cfg, db), db)


def three_arm_run(home: Path) -> TinyRun:
    """Human, contaminated and refinery-built synthetic arms, one generation."""
    db = f"sqlite:///{home / 'three-arm.db'}"
    return TinyRun(_run(three_arm_config(write_tiny_qa(home / "qa"), home / "runs"), db), db)


def qa_run(home: Path) -> TinyRun:
    """Each generation answers the questions and trains on its own answers: replace vs
    accumulate, 3 generations; the same data and model as the three-arm run, so its
    tokenizer and base come from the cache when both run in one session."""
    cfg = three_arm_config(write_tiny_qa(home / "qa"), home / "runs")
    del cfg["refinery"]
    cfg["experiment"].update(name="tiny-qa", generations=3)
    cfg["evaluation"]["metrics"] = ["exact_match", "f1", "rougeL"]
    cfg["arms"] = [{"name": "replace", "init": "previous", "mix": "replace"},
                   {"name": "accumulate", "init": "previous", "mix": "accumulate"}]
    db = f"sqlite:///{home / 'qa.db'}"
    return TinyRun(_run(cfg, db), db)

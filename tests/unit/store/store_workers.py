"""Processes for the concurrency test: one records generations, one queries meanwhile.

Each writes a JSON report to `report` instead of raising, so the test can show what went
wrong in the other process.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

import sqlalchemy as sa
from run_factory import write_generation

from collapselab.store import Store, record_generation, schema
from collapselab.store.db import read_transaction

METRICS_PER_GENERATION = 3


def writer(
    db_url: str,
    run_dir: str,
    arms: list[str],
    generations: int,
    attempts: int,
    examples: int,
    report: str,
) -> None:
    """Record every generation `attempts` times; attempt k writes values that encode k."""
    out = {"records": 0, "error": None}
    try:
        for attempt in range(attempts):
            for arm in arms:
                for g in range(generations):
                    write_generation(Path(run_dir), arm, 0, g, examples=examples, attempt=attempt)
                    record_generation(db_url, Path(run_dir), arm, 0, g)
                    out["records"] += 1
    except Exception:
        out["error"] = traceback.format_exc()
    Path(report).write_text(json.dumps(out))


def reader(
    db_url: str, run_id: str, expected: list[list], examples: int, stop_file: str, report: str
) -> None:
    """Query until `stop_file` appears; report every missing, partial or mixed generation.

    `expected` lists the [arm, generation] pairs that were recorded before the writers
    started: a redo replaces them, so each must be visible at every moment.
    """
    out: dict = {"reads": 0, "attempts_seen": [], "problems": [], "error": None}
    seen: set[int] = set()
    try:
        with Store(db_url) as store:
            while True:
                stopping = Path(stop_file).exists()  # one more full pass after the writer ends
                gens = store.generations(run_id)
                present = sorted([g["arm"], g["generation"]] for g in gens)
                if present != sorted(expected):
                    out["problems"].append(
                        f"generations present {present}, expected {sorted(expected)}"
                    )
                for g in gens:
                    if (g["n_metrics"], g["n_predictions"]) != (
                        METRICS_PER_GENERATION,
                        examples,
                    ) or g["refinery_attempts"] is None:
                        out["problems"].append(f"partial generation {g}")
                for problem in _mixed_attempts(store, run_id, seen):
                    out["problems"].append(problem)
                out["reads"] += 1
                if stopping:
                    break
                time.sleep(0.005)
    except Exception:
        out["error"] = traceback.format_exc()
    out["attempts_seen"] = sorted(seen)
    Path(report).write_text(json.dumps(out))


def _mixed_attempts(store: Store, run_id: str, seen: set[int]) -> list[str]:
    """In one snapshot, read each generation's attempt from three tables; they must agree."""
    m, p, g = schema.metrics, schema.predictions, schema.generations
    problems = []
    with read_transaction(store.engine) as conn:
        losses = {
            (r.arm, r.generation): json.loads(r.train_losses)[-1] - 1.75
            for r in conn.execute(
                sa.select(g.c.arm, g.c.generation, g.c.train_losses).where(g.c.run_id == run_id)
            )
        }
        details = {
            (r.arm, r.generation): json.loads(r.details)["attempt"]
            for r in conn.execute(
                sa.select(m.c.arm, m.c.generation, m.c.details).where(
                    m.c.run_id == run_id, m.c.name == "f1"
                )
            )
        }
        preds: dict = {}
        for r in conn.execute(
            sa.select(p.c.arm, p.c.generation, p.c.prediction).where(p.c.run_id == run_id)
        ):
            preds.setdefault((r.arm, r.generation), set()).add(
                int(r.prediction.split(" a")[1].split(" ")[0])
            )
    for key, attempt in losses.items():
        seen.add(int(attempt))
        if details.get(key) != attempt or preds.get(key) != {attempt}:
            problems.append(
                f"{key}: losses say attempt {attempt}, metrics {details.get(key)}, predictions {preds.get(key)}"
            )
    return problems

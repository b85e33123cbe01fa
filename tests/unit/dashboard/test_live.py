"""The dashboard reads in a loop while another process records generations into the same
SQLite file: no lock error on either side, and the new generations appear in the same
session without a restart."""

from __future__ import annotations

import json
import multiprocessing
import re

from unit.store.run_factory import make_run

from collapselab.store import record_generation, record_run

from .apptest import page, rerun, texts
from .workers import writer

ARMS, GENERATIONS, ATTEMPTS = ["replace", "accumulate"], 5, 2
RECORDED = re.compile(r"Recorded: generations 0 to (\d+)")


def test_generations_appear_while_the_engine_writes(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'results.db'}"
    run_dir = make_run(tmp_path / "runs", arms=tuple(ARMS), generations=GENERATIONS, examples=20)
    record_run(db, run_dir)
    for arm in ARMS:  # the run so far: generation 0
        record_generation(db, run_dir, arm, 0, 0)
    at = page(monkeypatch, db, page="generations", run="run-a")
    seen = [int(RECORDED.search(texts(at)).group(1))]
    report = tmp_path / "writer.json"
    process = multiprocessing.get_context("spawn").Process(
        target=writer, args=(db, str(run_dir), ARMS, GENERATIONS, ATTEMPTS, str(report)))
    process.start()
    reads = 0
    while process.is_alive() or seen[-1] < GENERATIONS - 1:
        seen.append(int(RECORDED.search(texts(rerun(at))).group(1)))  # raises on any page error
        reads += 1
        assert reads < 500, f"the page never showed generation {GENERATIONS - 1}: {seen[-10:]}"
    process.join(timeout=60)
    written = json.loads(report.read_text())
    assert process.exitcode == 0 and written["error"] is None, written["error"]
    assert written["records"] == (GENERATIONS - 1) * ATTEMPTS * len(ARMS)
    assert seen == sorted(seen) and seen[0] == 0 and seen[-1] == GENERATIONS - 1
    assert len(set(seen)) > 2  # generations appeared one by one while the page was read
    assert at.selectbox(key="run").value == "run-a"  # the same session, the same selection

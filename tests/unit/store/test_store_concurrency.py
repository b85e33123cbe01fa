"""A reader querying while runs write sees no lock errors and no partial generation.

Two writer processes (one per arm, as a sweep running arms in parallel would) redo every
generation several times while a reader process queries.
"""

from __future__ import annotations

import json
import multiprocessing

from run_factory import make_run
from store_workers import reader, writer

from collapselab.store import import_run_dir

ARMS, GENERATIONS, ATTEMPTS, EXAMPLES = ["replace", "accumulate"], 3, 4, 20


def test_reader_never_sees_lock_errors_or_partial_generations(db_url, runs_root, tmp_path):
    run_dir = make_run(runs_root, arms=tuple(ARMS), generations=GENERATIONS, examples=EXAMPLES)
    import_run_dir(db_url, run_dir)  # attempt 0 of everything, so the reader starts with rows
    ctx = multiprocessing.get_context(
        "spawn"
    )  # separate processes, as the engine and a dashboard are
    stop, r_report = tmp_path / "stop", tmp_path / "reader.json"
    expected = [[arm, g] for arm in ARMS for g in range(GENERATIONS)]
    r = ctx.Process(
        target=reader, args=(db_url, "run-a", expected, EXAMPLES, str(stop), str(r_report))
    )
    writers = [
        ctx.Process(
            target=writer,
            args=(
                db_url,
                str(run_dir),
                [arm],
                GENERATIONS,
                ATTEMPTS,
                EXAMPLES,
                str(tmp_path / f"{arm}.json"),
            ),
        )
        for arm in ARMS
    ]
    r.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    stop.touch()
    r.join(timeout=60)
    assert [w.exitcode for w in writers] + [r.exitcode] == [0, 0, 0]
    read = json.loads(r_report.read_text())
    for arm in ARMS:
        written = json.loads((tmp_path / f"{arm}.json").read_text())
        assert written["error"] is None, written["error"]  # e.g. "database is locked"
        assert written["records"] == GENERATIONS * ATTEMPTS
    assert read["error"] is None, read["error"]
    assert read["problems"] == []
    # The reader really overlapped the writer: it read many times and saw redone attempts.
    assert read["reads"] >= 10
    assert len(read["attempts_seen"]) >= 2, read

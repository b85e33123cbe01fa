"""A cold cache entry asked for by several processes at once is built once, by one of them;
the others wait and read the finished entry, and no temporary file is left behind."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from cache_workers import fill

from collapselab.cache import cache_dir, filled

PROCESSES = 4


@pytest.mark.parametrize(("kind", "folder"), [("gibberish", "gibberish"), ("tokenizer", "tokenizers")])
def test_a_cold_entry_filled_by_several_processes_at_once_is_built_once(kind, folder, tmp_path):
    # The README's two-trial sweep on a fresh machine: both trials fitted the gibberish
    # calibration into the same cold cache through one fixed temporary name, and the first
    # rename pulled the file from under the second (FileNotFoundError).
    ctx = multiprocessing.get_context("spawn")  # separate interpreters, as Ray's workers are
    barrier = ctx.Barrier(PROCESSES)
    builds = tmp_path / "builds"
    reports = [tmp_path / f"report-{i}.json" for i in range(PROCESSES)]
    procs = [ctx.Process(target=fill, args=(kind, str(builds), barrier, str(r))) for r in reports]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    outcomes = [json.loads(r.read_text()) for r in reports]
    assert [o["error"] for o in outcomes] == [None] * PROCESSES, [o["error"] for o in outcomes if o["error"]][0]
    assert all(o["result"] == outcomes[0]["result"] for o in outcomes)  # every process read the same entry
    assert len(builds.read_text().split()) == 1  # built once; the others waited for it
    entries = sorted(p.name for p in cache_dir(folder).iterdir())
    assert len(entries) == 2 and entries[0] == f".{entries[1]}.lock", entries  # the entry and its lock, no temporary


def test_a_failed_build_leaves_nothing_and_the_next_one_builds(tmp_path):
    entry = tmp_path / "cache" / "thing.json"

    def broken(path: Path) -> None:
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        filled(entry, broken)
    assert not entry.exists() and os.listdir(entry.parent) == [".thing.json.lock"]
    assert filled(entry, lambda path: path.write_text("whole")).read_text() == "whole"
    assert filled(entry, broken).read_text() == "whole"  # complete: never built again

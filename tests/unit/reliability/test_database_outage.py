"""A results database that goes away during a run: the run directory keeps everything (it is
the source of truth), each write is tried again with a growing pause, and either the rows
are recorded once the database is back, or the run stops with exit 3 naming the database
and the next invocation records whatever is missing. No row is ever written twice: the rows
are checked table by table against a fresh import of the same run directory.

SQLite here: another connection holds the write lock (a notebook's long transaction).
PostgreSQL: tests/e2e/test_database_outage_postgres.py stops and starts a server of its own.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from killing import Comparison, compare_rows, database_rows, primary_keys
from tiny import tiny_config

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import DatabaseDown
from collapselab.lab.events import GenerationStarted
from collapselab.rundir.generation import finished
from collapselab.store import import_run_dir
from collapselab.store import record as store_record


def same_rows_as_a_fresh_import(url: str, run_dir: Path, tmp_path: Path) -> Comparison:
    """The run's rows in `url` against the rows a fresh database gets from its directory."""
    fresh = f"sqlite:///{tmp_path / f'fresh-{run_dir.name}.db'}"
    import_run_dir(fresh, run_dir)
    imported, recorded = database_rows(fresh, [run_dir.name]), database_rows(url, [run_dir.name])
    assert [r.pop("status") for r in recorded["runs"]] == ["done"]  # the engine's own; an import sets none
    imported["runs"][0].pop("status")
    out = compare_rows(imported, recorded, keys=primary_keys(), into=Comparison())
    assert out.rows > 0 and not out.differences and out.duplicate_rows == 0, out.differences
    return out


def rows(url: str, table: str, run_id: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(f"select count(*) from {table} where run_id = :r"), {"r": run_id}).scalar_one()
    finally:
        engine.dispose()


class WriteLock:
    """A second SQLite connection holding the write lock, as a long transaction would."""

    def __init__(self, path: Path):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.held = False

    def take(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.held = True

    def release(self) -> None:
        if self.held:
            self.conn.execute("ROLLBACK")
            self.held = False


def test_sqlite_locked_mid_run_waits_then_records_or_stops_with_exit_3_and_is_repaired(tiny_lm_data, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr("collapselab.store.db.BUSY_TIMEOUT_MS", 100)  # SQLite's own wait, before ours
    db_file = tmp_path / "lab.db"
    url = f"sqlite:///{db_file}"
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    cfg["arms"] = cfg["arms"][:1]
    cfg = config_from_dict(cfg)
    run_experiment(cfg, run_id="warm", db_url=url)  # the database exists; the tokenizer and base are cached
    lock = WriteLock(db_file)

    def lock_at_generation_1(event) -> None:
        if isinstance(event, GenerationStarted) and event.generation == 1:
            lock.take()

    # 1. Locked while generation 1 runs; released during the first pause: recorded, once.
    pauses = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        lock.release()

    monkeypatch.setattr(store_record.time, "sleep", pause)
    run_dir = run_experiment(cfg, run_id="waits", db_url=url, listeners=[lock_at_generation_1])
    assert pauses == [store_record.FIRST_PAUSE_S]
    err = capfd.readouterr().err
    assert f"warning: {url}: cannot reach the results database" in err and "database is locked" in err and "trying again in 0.5 s" in err
    same_rows_as_a_fresh_import(url, run_dir, tmp_path)
    assert rows(url, "generations", "waits") == 2

    # 2. Locked for longer than the retries last: the run stops naming the database (exit 3)
    # with generation 0 finished on disk; the next invocation records it and goes on.
    monkeypatch.setenv(store_record.RETRY_ENV, "3")
    pauses.clear()
    monkeypatch.setattr(store_record.time, "sleep", pauses.append)  # the lock stays
    with pytest.raises(DatabaseDown) as down:
        run_experiment(cfg, run_id="stops", db_url=url, listeners=[lock_at_generation_1])
    assert down.value.exit_code == 3
    assert str(down.value).startswith(f"{url}: cannot reach the results database") and "still down after 2 s of retries" in str(down.value)
    assert pauses == [0.5, 1.0]  # the next pause (2 s) would pass the 3 s allowed
    stopped = tmp_path / "runs" / "tiny" / "stops"
    assert [(f.arm, f.generation) for f in finished(stopped)] == [("replace", 0), ("replace", 1)]  # both on disk
    lock.release()
    assert rows(url, "generations", "stops") == 1  # generation 1 never reached the database
    run_experiment(cfg, run_id="stops", db_url=url)
    same_rows_as_a_fresh_import(url, stopped, tmp_path)
    assert rows(url, "runs", "stops") == 1 and rows(url, "generations", "stops") == 2

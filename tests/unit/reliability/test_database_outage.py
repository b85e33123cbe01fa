"""A results database that goes away during a run: the run directory keeps everything (it is
the source of truth), each write is tried again with a growing pause, and either the rows
are recorded once the database is back, or the run stops with exit 3 naming the database
and the next invocation records whatever is missing. No row is ever written twice: the rows
are checked table by table against a fresh import of the same run directory.

SQLite: another connection holds the write lock (a notebook's long transaction).
PostgreSQL: a server of the test's own is stopped and started again (tests/private_postgres.py).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from killing import Comparison, compare_rows, database_rows, primary_keys
from private_postgres import PrivatePostgres
from tiny import tiny_config, write_config

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import DatabaseDown
from collapselab.lab.events import GenerationStarted
from collapselab.rundir.generation import finished
from collapselab.store import import_run_dir
from collapselab.store import record as store_record


def _same_rows_as_a_fresh_import(url: str, run_dir: Path, tmp_path: Path) -> Comparison:
    """The run's rows in `url` against the rows a fresh database gets from its directory."""
    fresh = f"sqlite:///{tmp_path / f'fresh-{run_dir.name}.db'}"
    import_run_dir(fresh, run_dir)
    imported, recorded = database_rows(fresh, [run_dir.name]), database_rows(url, [run_dir.name])
    assert [r.pop("status") for r in recorded["runs"]] == ["done"]  # the engine's own; an import sets none
    imported["runs"][0].pop("status")
    out = compare_rows(imported, recorded, keys=primary_keys(), into=Comparison())
    assert out.rows > 0 and not out.differences and out.duplicate_rows == 0, out.differences
    return out


def _rows(url: str, table: str, run_id: str) -> int:
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
    _same_rows_as_a_fresh_import(url, run_dir, tmp_path)
    assert _rows(url, "generations", "waits") == 2

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
    assert _rows(url, "generations", "stops") == 1  # generation 1 never reached the database
    run_experiment(cfg, run_id="stops", db_url=url)
    _same_rows_as_a_fresh_import(url, stopped, tmp_path)
    assert _rows(url, "runs", "stops") == 1 and _rows(url, "generations", "stops") == 2


def _wait_for(predicate, proc: subprocess.Popen, log: Path, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def test_postgres_stopped_mid_run_then_back_records_everything_once(tiny_lm_data, tmp_path):
    server = PrivatePostgres()
    try:
        cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
        cfg["arms"] = cfg["arms"][:1]
        config = write_config(cfg, tmp_path / "c.yaml")

        def run(run_id: str, retry_s: str, log: Path) -> subprocess.Popen:
            import os

            env = {**os.environ, store_record.RETRY_ENV: retry_s, "COLLAPSELAB_PROGRESS": "off"}
            with log.open("a") as out:
                return subprocess.Popen([sys.executable, "-m", "collapselab.cli", "run", str(config), "--run-id", run_id, "--db", server.url, "-q"],
                                        env=env, stdout=out, stderr=subprocess.STDOUT, text=True)

        # 1. Down while generation 1 trains, back a few seconds later: the run waits and finishes.
        log = tmp_path / "back.log"
        proc = run("back", "120", log)
        gen0 = tmp_path / "runs" / "tiny" / "back" / "replace" / "seed-0" / "gen-0" / "DONE"
        _wait_for(gen0.exists, proc, log, 300, "generation 0")
        server.stop()
        _wait_for(lambda: "trying again in" in log.read_text(), proc, log, 300, "retry")
        time.sleep(1.5)
        server.start()
        assert proc.wait(300) == 0, log.read_text()[-3000:]
        assert f"warning: {server.url}: cannot reach the results database" in log.read_text()
        _same_rows_as_a_fresh_import(server.url, tmp_path / "runs" / "tiny" / "back", tmp_path)
        assert _rows(server.url, "generations", "back") == 2

        # 2. Down for longer than the retries last: exit 3 naming the database, every
        # finished generation kept; once it is back, the same command records the rest.
        log = tmp_path / "stops.log"
        proc = run("stops", "3", log)
        gen0 = tmp_path / "runs" / "tiny" / "stops" / "replace" / "seed-0" / "gen-0" / "DONE"
        _wait_for(gen0.exists, proc, log, 300, "generation 0")
        server.stop()
        assert proc.wait(300) == 3, log.read_text()[-3000:]
        errors = [line for line in log.read_text().splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "postgresql+psycopg://postgres@127.0.0.1" in errors[0] and "still down after" in errors[0]
        assert "every finished generation stays in the run directory" in errors[0] and "Traceback" not in log.read_text()
        assert gen0.exists()
        server.start()
        again = run("stops", "3", log)
        assert again.wait(300) == 0, log.read_text()[-3000:]
        _same_rows_as_a_fresh_import(server.url, tmp_path / "runs" / "tiny" / "stops", tmp_path)
        assert _rows(server.url, "runs", "stops") == 1 and _rows(server.url, "generations", "stops") == 2
    finally:
        server.remove()

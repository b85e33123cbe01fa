"""The results database in PostgreSQL, stopped in the middle of a run: the run waits and
records everything once the server is back; or, when it stays down longer than the retries
last, stops with exit 3 naming the database, and the same command records the rest later.
No row twice (checked table by table against a fresh import of the run directory).

The server is one of the test's own (tests/private_postgres.py), never the shared cluster
other tests use. SQLite's case: tests/unit/reliability/test_database_outage.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kill_targets import write_lm_data
from private_postgres import PrivatePostgres
from tiny import tiny_config, write_config
from unit.reliability.test_database_outage import rows, same_rows_as_a_fresh_import

from collapselab.store import record as store_record

pytestmark = pytest.mark.e2e


def _wait_for(predicate, proc: subprocess.Popen, log: Path, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout_s} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def test_postgres_stopped_mid_run_then_back_records_everything_once(tmp_path):
    server = PrivatePostgres()
    try:
        cfg = tiny_config(write_lm_data(tmp_path / "data"), tmp_path / "runs", generations=2)
        cfg["arms"] = cfg["arms"][:1]
        config = write_config(cfg, tmp_path / "c.yaml")

        def run(run_id: str, retry_s: str, log: Path) -> subprocess.Popen:
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
        same_rows_as_a_fresh_import(server.url, tmp_path / "runs" / "tiny" / "back", tmp_path)
        assert rows(server.url, "generations", "back") == 2

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
        same_rows_as_a_fresh_import(server.url, tmp_path / "runs" / "tiny" / "stops", tmp_path)
        assert rows(server.url, "runs", "stops") == 1 and rows(server.url, "generations", "stops") == 2
    finally:
        server.remove()

"""A database that cannot be opened or reached is `DatabaseUnreachable` (exit 3), named by its URL;
bad input to the store (a damaged run directory, an unknown run) stays a `StoreError` (exit 2)."""

from __future__ import annotations

import pytest
from run_factory import make_run
from store_backends import sqlite_url
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.errors import EXIT_BAD_INPUT, EXIT_STORE
from collapselab.store import (
    DatabaseUnreachable,
    Store,
    StoreError,
    connect,
    record_generation,
    record_run,
)


def test_exit_codes_of_the_two_kinds():
    assert StoreError("x").exit_code == EXIT_BAD_INPUT and DatabaseUnreachable("x").exit_code == EXIT_STORE
    assert issubclass(DatabaseUnreachable, StoreError)  # callers catching StoreError still do


def test_unreachable_server_is_named_with_its_password_masked():
    with pytest.raises(DatabaseUnreachable) as e:
        connect("postgresql+psycopg://lab:secret@127.0.0.1:9/results")
    message = str(e.value)
    assert message.startswith("postgresql+psycopg://lab:***@127.0.0.1:9/results: cannot reach the results database (OperationalError: ")
    assert "secret" not in message and "\n" not in message


def test_file_that_is_not_a_database(tmp_path):
    (tmp_path / "x.db").write_text("not sqlite\n" * 200)
    with pytest.raises(DatabaseUnreachable, match=r"x\.db: cannot open the results database \(DatabaseError: file is not a database\)$"):
        Store(sqlite_url(tmp_path, "x.db"))


def test_database_lost_between_writes_is_a_named_error(tmp_path):
    # What `run` meets when the database breaks after its start: the write between two
    # generations raises DatabaseUnreachable; the run directory is untouched.
    url = sqlite_url(tmp_path)
    run_dir = make_run(tmp_path / "runs", generations=1)
    record_run(url, run_dir)
    before = sorted(p.name for p in (run_dir / "replace" / "seed-0" / "gen-0").iterdir())
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"results.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "results.db").write_bytes(b"\x00garbage" * 512)
    with pytest.raises(DatabaseUnreachable, match="results.db: cannot open the results database"):
        record_generation(url, run_dir, "replace", 0, 0)
    assert sorted(p.name for p in (run_dir / "replace" / "seed-0" / "gen-0").iterdir()) == before


def test_run_says_that_finished_generations_are_kept(tmp_path, monkeypatch):
    import collapselab.engine

    def lose_the_database(*_a, **_k):
        raise DatabaseUnreachable("sqlite:///x.db: cannot reach the results database (OperationalError: disk I/O error)")

    monkeypatch.setattr(collapselab.engine, "run_experiment", lose_the_database)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", "quickstart", "--db", sqlite_url(tmp_path)])
    assert result.exit_code == EXIT_STORE and result.stdout == ""
    assert result.stderr == (
        "error: sqlite:///x.db: cannot reach the results database (OperationalError: disk I/O error); "
        "every finished generation stays in the run directory and is recorded when the run is continued\n"
    )

"""A missing, empty, older or newer database: the page says what to do in one line, never
a traceback."""

from __future__ import annotations

import sqlalchemy as sa

from collapselab.store.db import connect, write_transaction
from collapselab.store.migrations import current_version, latest_version, upgrade

from .apptest import page, texts


def test_a_missing_database_says_how_to_create_one(tmp_path, monkeypatch):
    at = page(monkeypatch, f"sqlite:///{tmp_path / 'nowhere' / 'results.db'}")
    assert "no results database at" in texts(at) and "collapselab quickstart" in texts(at)
    assert not (tmp_path / "nowhere" / "results.db").exists()  # reading never creates it


def test_an_empty_database_says_it_has_no_runs(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'results.db'}"
    connect(db).dispose()
    for name in ("runs", "generations", "question", "synthetic", "refinery"):
        at = page(monkeypatch, db, page=name)
        assert "has no runs yet" in texts(at) and "collapselab run CONFIG" in texts(at), name


def test_an_older_schema_is_upgraded_in_place(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'results.db'}"
    engine = connect(db, migrate=False)
    upgrade(engine, target=3)
    at = page(monkeypatch, db, page="runs")
    assert "has no runs yet" in texts(at)
    with engine.connect() as conn:
        assert current_version(conn) == latest_version()
    engine.dispose()


def test_a_newer_schema_is_refused_with_a_message(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'results.db'}"
    engine = connect(db)
    with write_transaction(engine) as conn:
        conn.execute(sa.text("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'm099_future', 'x')"))
    engine.dispose()
    at = page(monkeypatch, db, page="generations", expect_error=True)
    assert [e.value for e in at.error] == [texts(at).strip()]  # one line, nothing else
    assert "schema version 99 is newer than this collapselab knows" in texts(at)

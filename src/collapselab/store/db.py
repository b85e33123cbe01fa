"""Connecting to the results database: URL resolution, engines, transactions.

SQLite is the embedded default (`sqlite:///runs/collapselab.db`, relative to the working
directory) and runs in WAL mode so a reader never blocks the writer; any other SQLAlchemy
URL (PostgreSQL is the tested one) is used as given. Every engine returned by `connect`
has its schema upgraded to the newest migration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from collapselab.errors import StoreError
from collapselab.store.transactions import is_sqlite, read_transaction, write_transaction

DEFAULT_URL = "sqlite:///runs/collapselab.db"
ENV_VAR = "COLLAPSELAB_DB"
# How long a SQLite connection waits for another writer before failing; a generation's
# transaction takes milliseconds, so 60 s only ever trips on a stuck process.
BUSY_TIMEOUT_MS = 60_000


def resolve_url(db_url: str | None) -> str:
    """The database URL to use: `db_url`, else `$COLLAPSELAB_DB`, else the SQLite default."""
    return db_url or os.environ.get(ENV_VAR) or DEFAULT_URL


def require_database(db_url: str | None) -> None:
    """Raise when `db_url` names a SQLite file that does not exist (servers are left to connect)."""
    url = sa.make_url(resolve_url(db_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            raise StoreError(
                f"no results database at {url.database}; record a run first, or pass --db / set ${ENV_VAR}"
            )


def connect(db_url: str | None = None, *, migrate: bool = True) -> Engine:
    """An engine for `db_url` (see `resolve_url`), upgraded to the newest schema.

    Args:
        db_url: SQLAlchemy URL; None means `$COLLAPSELAB_DB` or the SQLite default.
        migrate: apply pending migrations (tests turn this off to build old schemas).
    """
    url = sa.make_url(resolve_url(db_url))
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url)
    else:
        engine = sa.create_engine(url)
    if migrate:
        from collapselab.store.migrations import upgrade

        upgrade(engine)
    return engine


def _sqlite_engine(url: sa.URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # pysqlite's own transaction handling skips BEGIN before DDL and reads; take it
        # over (SQLAlchemy's documented recipe) so migrations and snapshots are real
        # transactions, and emit BEGIN ourselves in `_on_begin`.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL, much faster
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front: a deferred transaction that reads and
        # then writes can hit SQLITE_BUSY that busy_timeout cannot wait out.
        write = conn.get_execution_options().get("collapselab_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


__all__ = ["DEFAULT_URL", "StoreError", "connect", "is_sqlite", "read_transaction", "require_database", "resolve_url", "write_transaction"]

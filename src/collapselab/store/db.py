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

from collapselab.errors import DatabaseUnreachable, StoreError
from collapselab.store.migrations import upgrade
from collapselab.store.transactions import (
    first_line,
    is_sqlite,
    read_transaction,
    write_transaction,
)

DEFAULT_URL = "sqlite:///runs/collapselab.db"
ENV_VAR = "COLLAPSELAB_DB"
# How long a SQLite connection waits for another writer before failing; a generation's
# transaction takes milliseconds, so 60 s only ever trips on a stuck process.
BUSY_TIMEOUT_MS = 60_000


def resolve_url(db_url: str | None) -> str:
    """The database URL to use: `db_url`, else `$COLLAPSELAB_DB`, else the SQLite default."""
    return db_url or os.environ.get(ENV_VAR) or DEFAULT_URL


def shown_url(db_url: str | None) -> str:
    """The database URL to use (see `resolve_url`) as it may be printed: password masked.

    Raises:
        DatabaseUnreachable: The URL does not parse (exit code 3, one line).
    """
    return _parse_url(resolve_url(db_url)).render_as_string(hide_password=True)


def require_database(db_url: str | None) -> None:
    """Raise when `db_url` names a SQLite file that does not exist (servers are left to connect)."""
    url = _parse_url(resolve_url(db_url))
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        if not Path(url.database).is_file():
            raise DatabaseUnreachable(
                f"no results database at {url.database}; record a run first, or pass --db / set ${ENV_VAR}"
            )


def connect(db_url: str | None = None, *, migrate: bool = True) -> Engine:
    """An engine for `db_url` (see `resolve_url`), upgraded to the newest schema.

    Args:
        db_url: SQLAlchemy URL; None means `$COLLAPSELAB_DB` or the SQLite default.
        migrate: apply pending migrations (tests turn this off to build old schemas).

    Raises:
        DatabaseUnreachable: The URL does not parse, its driver is not installed, or
            (with `migrate`, which opens a connection) the database cannot be opened.
    """
    raw = resolve_url(db_url)
    url = _parse_url(raw)
    try:
        if url.get_backend_name() == "sqlite":
            engine = _sqlite_engine(url)
        else:
            engine = sa.create_engine(url)
    except sa.exc.ArgumentError as e:
        raise DatabaseUnreachable(f"{_shown(raw)}: not a usable database URL ({first_line(e)})") from None
    except (sa.exc.NoSuchModuleError, ModuleNotFoundError) as e:
        raise DatabaseUnreachable(f"{_shown(raw)}: no driver for this database ({first_line(e)}); for PostgreSQL: pip install 'collapselab[postgres]'") from None
    except OSError as e:
        raise DatabaseUnreachable(f"{_shown(raw)}: cannot create the database's folder ({e.strerror or e})") from None
    if migrate:
        try:
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


def _parse_url(raw: str) -> sa.URL:
    try:
        return sa.make_url(raw)
    except sa.exc.ArgumentError as e:
        raise DatabaseUnreachable(f"database URL {raw!r} is not a SQLAlchemy URL ({first_line(e)}); e.g. sqlite:///runs/collapselab.db or postgresql+psycopg://user@host/db") from None


def _shown(raw: str) -> str:
    """The URL as it may be printed: with any password masked."""
    try:
        return sa.make_url(raw).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(raw)


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


__all__ = ["DEFAULT_URL", "DatabaseUnreachable", "StoreError", "connect", "is_sqlite", "read_transaction", "require_database", "resolve_url", "shown_url", "write_transaction"]

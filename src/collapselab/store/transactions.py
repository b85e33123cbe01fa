"""Transactions on the results database: one write committed whole, one consistent read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"



@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction for a write: committed as a whole or not at all."""
    with engine.connect().execution_options(collapselab_write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """One consistent snapshot for a query that reads several tables.

    SQLite: a WAL read transaction sees one snapshot. PostgreSQL: READ COMMITTED takes a
    snapshot per statement, so a multi-statement read could straddle a commit; REPEATABLE
    READ keeps one for the whole transaction.
    """
    conn = engine.connect()
    if not is_sqlite(engine):
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    with conn, conn.begin():
        yield conn

"""Transactions on the results database: one write committed whole, one consistent read."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from collapselab.errors import DatabaseDown, DatabaseUnreachable

# Errors of the database itself, not of the statement: the server is gone, the file is
# locked or not a database. IntegrityError and the other DatabaseError subclasses are
# bugs in the store's own SQL and keep their traceback.
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def first_line(e: BaseException) -> str:
    """`Type: first line` of a driver error (psycopg's run over several lines)."""
    orig = getattr(e, "orig", None) or e
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0]}" if lines else type(orig).__name__


@contextmanager
def _reachable(engine: Engine) -> Iterator[None]:
    """Turn a lost or unopenable database into `DatabaseUnreachable` naming the URL."""
    try:
        yield
    except _UNREACHABLE as e:
        raise DatabaseDown(
            f"{engine.url.render_as_string(hide_password=True)}: cannot reach the results database ({first_line(e)})"
        ) from None
    except sa.exc.DatabaseError as e:
        if type(e) is not sa.exc.DatabaseError:  # IntegrityError and kin: a bug in our SQL
            raise
        raise DatabaseUnreachable(
            f"{engine.url.render_as_string(hide_password=True)}: cannot open the results database ({first_line(e)})"
        ) from None


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction for a write: committed as a whole or not at all."""
    with _reachable(engine), engine.connect().execution_options(collapselab_write=True) as conn, conn.begin():
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """One consistent snapshot for a query that reads several tables.

    SQLite: a WAL read transaction sees one snapshot. PostgreSQL: READ COMMITTED takes a
    snapshot per statement, so a multi-statement read could straddle a commit; REPEATABLE
    READ keeps one for the whole transaction.
    """
    with _reachable(engine):
        conn = engine.connect()
        if not is_sqlite(engine):
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn, conn.begin():
            yield conn

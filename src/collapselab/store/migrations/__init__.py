"""Numbered, append-only schema migrations.

Each `mNNN_<what>.py` module in this package has an `upgrade(conn)` that moves the schema
from version NNN-1 to NNN. A migration is never edited once released: a change to the
schema is a new module, so a database created by any older version upgrades in place.
The `schema_version` table lists the migrations a database has applied.
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from collapselab.errors import DatabaseUnreachable
from collapselab.store.transactions import read_transaction, write_transaction

_NAME = re.compile(r"^m(\d{3})_\w+$")
# Any constant will do: it only serializes concurrent upgrades of one PostgreSQL database.
_PG_LOCK_KEY = 0x636F6C6C

schema_version = sa.Table(
    "schema_version",
    sa.MetaData(),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.String(64), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    module: ModuleType


def migrations() -> list[Migration]:
    """All migrations in version order; their numbers must run 1, 2, 3, ... without a gap."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        m = _NAME.match(info.name)
        if m:
            found.append(
                Migration(
                    int(m.group(1)), info.name, importlib.import_module(f"{__name__}.{info.name}")
                )
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(
            f"store migrations must be numbered 1..N without gaps or repeats, found {versions}"
        )
    return found


def latest_version() -> int:
    return len(migrations())


def current_version(conn: Connection) -> int:
    """The highest migration applied to the database (0 for an empty database)."""
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(schema_version.c.version), 0))
    ).scalar_one()


def upgrade(engine: Engine, target: int | None = None) -> list[str]:
    """Apply pending migrations up to `target` (default: the newest) in one transaction.

    Returns the names of the migrations applied (empty when the database was current).
    Concurrent callers are safe: SQLite serializes them with its write lock, PostgreSQL
    with an advisory lock, and each re-reads the version once it holds the lock.
    """

    todo = migrations()
    target = len(todo) if target is None else target
    # Readers open the store too: check under a read snapshot first so an up-to-date
    # database never takes the write lock.
    with read_transaction(engine) as conn:
        version = current_version(conn)
    if version > len(todo):
        raise DatabaseUnreachable(
            f"{engine.url.render_as_string(hide_password=True)}: schema version {version} is newer than this "
            f"collapselab knows ({len(todo)}); upgrade collapselab"
        )
    if version >= target:
        return []
    applied = []
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        for mig in todo[version:target]:
            mig.module.upgrade(conn)
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            conn.execute(
                schema_version.insert().values(version=mig.version, name=mig.name, applied_at=now)
            )
            applied.append(mig.name)
    return applied

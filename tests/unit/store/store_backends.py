"""Database URLs for the store tests: a fresh SQLite file, or a fresh PostgreSQL schema.

PostgreSQL comes from `COLLAPSELAB_TEST_PG_URL` (`.ci/postgres.sh` prints it). Without it
the PostgreSQL tests fail under CI (`CI` set) and skip only on a developer's machine, so
the real-server path is never silently skipped where it counts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ENV = "COLLAPSELAB_TEST_PG_URL"


def sqlite_url(directory: Path, name: str = "results.db") -> str:
    return f"sqlite:///{directory / name}"


def pg_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if url:
        return url
    message = (
        f'${PG_ENV} is not set; run `eval "$(.ci/postgres.sh)"` to start PostgreSQL and set it'
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def pg_schema_url() -> Iterator[str]:
    """A URL whose connections live in a new, empty schema; the schema is dropped after."""
    base = sa.make_url(pg_base_url())
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@contextmanager
def backend_url(backend: str, directory: Path, name: str = "results.db") -> Iterator[str]:
    if backend == "sqlite":
        yield sqlite_url(directory, name)
    else:
        with pg_schema_url() as url:
            yield url

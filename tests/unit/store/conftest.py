"""Every store test that takes `db_url` runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import pytest
from store_backends import backend_url

BACKENDS = ["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.e2e])]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    with backend_url(request.param, tmp_path) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def db_url_pair(request, tmp_path):
    """Two empty databases on the same backend (a source and a target)."""
    with (
        backend_url(request.param, tmp_path, "a.db") as a,
        backend_url(request.param, tmp_path, "b.db") as b,
    ):
        yield a, b


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request, tmp_path_factory):
    """One database per test module and backend, for modules whose tests only read."""
    with backend_url(request.param, tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def runs_root(tmp_path):
    return tmp_path / "runs"

"""The same run recorded in SQLite and in a real PostgreSQL answers every query identically.

Needs `COLLAPSELAB_TEST_PG_URL` (`eval "$(.ci/postgres.sh)"`); fails under CI without it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

# The run-directory factory and backend URLs are shared with the unit store tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "store"))
from run_factory import every_answer, make_run, write_generation  # noqa: E402
from store_backends import pg_schema_url, sqlite_url  # noqa: E402

from collapselab.cli import app  # noqa: E402
from collapselab.store import Store, export_run, import_export, import_run_dir, record_generation  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def pg_url():
    with pg_schema_url() as url:
        yield url


def test_sqlite_and_postgres_answer_every_query_identically(pg_url, tmp_path):
    run_dir = make_run(
        tmp_path / "runs", arms=("replace", "Accumulate", "ratio-0.1"), seeds=(0, 1), generations=3
    )
    # Values that differ between float printers and collations must survive both backends.
    gdir = write_generation(run_dir, "ratio-0.1", 1, 2, attempt=7)
    (gdir / "metrics.json").write_text(
        (gdir / "metrics.json").read_text().replace("0.5", "0.1234567890123456789")
    )
    lite = sqlite_url(tmp_path)
    for url in (lite, pg_url):
        import_run_dir(url, run_dir)
        record_generation(url, run_dir, "ratio-0.1", 1, 2)  # a redo, as a resumed engine does
    with Store(lite) as a, Store(pg_url) as b:
        expected = every_answer(a, "run-a")
        assert every_answer(b, "run-a") == expected
    assert [r["arm"] for r in expected["run"]["arms"]] == ["replace", "Accumulate", "ratio-0.1"]


def test_export_from_postgres_imports_into_sqlite_identically(pg_url, tmp_path):
    run_dir = make_run(tmp_path / "runs", seeds=(0,), generations=2)
    import_run_dir(pg_url, run_dir)
    export_run(pg_url, "run-a", tmp_path / "export")
    lite = sqlite_url(tmp_path)
    import_export(lite, tmp_path / "export")
    with Store(lite) as a, Store(pg_url) as b:
        assert every_answer(a, "run-a") == every_answer(b, "run-a")


def test_results_command_prints_the_same_from_both(pg_url, tmp_path):
    run_dir = make_run(tmp_path / "runs", generations=2)
    runner = CliRunner()
    outputs = []
    for url in (sqlite_url(tmp_path), pg_url):
        assert runner.invoke(app, ["import", str(run_dir), "--db", url]).exit_code == 0
        for args in ([], ["--metric", "perplexity"], ["--question", "h3"]):
            result = runner.invoke(app, ["results", "run-a", "--db", url, "-f", "csv", *args])
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout)
    assert outputs[:3] == outputs[3:]

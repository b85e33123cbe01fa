"""`collapselab results|export|import` through the real CLI app."""

from __future__ import annotations

import csv
import io
import json

import pytest
from run_factory import make_run, value
from typer.testing import CliRunner


@pytest.fixture(scope="module")
def app():
    from collapselab.cli import app

    return app


@pytest.fixture
def recorded(app, db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace", "accumulate"), generations=2, examples=3)
    result = CliRunner().invoke(app, ["import", str(run_dir), "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "imported 4 finished generation(s)" in result.output
    return db_url, run_dir


def invoke(app, *args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_results_formats_agree(app, recorded):
    db, run_dir = recorded
    rows = list(
        csv.DictReader(io.StringIO(invoke(app, "results", "run-a", "--db", db, "--format", "csv")))
    )
    as_json = json.loads(
        invoke(app, "results", str(run_dir), "--db", db, "--format", "json")
    )  # by directory
    assert len(rows) == len(as_json) == 4
    assert float(rows[3]["f1"]) == as_json[3]["f1"] == value("accumulate", 0, 1)
    md = invoke(
        app, "results", "run-a", "--db", db, "--format", "md", "--arm", "accumulate"
    ).splitlines()
    assert md[0] == "| arm | seed | generation | exact_match | f1 | perplexity |"
    assert len(md) == 2 + 2 and md[2].startswith("| accumulate | 0 | 0 | 0.5 | 0.8 |")
    assert "run-a: metrics" in invoke(app, "results", "run-a", "--db", db)  # the rich table


def test_results_lists_runs_compares_arms_and_follows_a_question(app, recorded):
    db, _ = recorded
    runs = json.loads(invoke(app, "results", "--db", db, "-f", "json"))
    assert [(r["run_id"], r["arms"], r["generations"]) for r in runs] == [
        ("run-a", "replace,accumulate", 4)
    ]
    compare = json.loads(
        invoke(app, "results", "run-a", "--db", db, "--metric", "f1", "-f", "json")
    )
    assert compare == [
        {
            "generation": g,
            "replace": value("replace", 0, g),
            "accumulate": value("accumulate", 0, g),
        }
        for g in (0, 1)
    ]
    history = list(
        csv.DictReader(
            io.StringIO(
                invoke(
                    app,
                    "results",
                    "run-a",
                    "--db",
                    db,
                    "--question",
                    "h1",
                    "--arm",
                    "replace",
                    "-f",
                    "csv",
                )
            )
        )
    )
    assert [(h["generation"], h["prediction"], h["exact_match"]) for h in history] == [
        ("0", "replace s0 g0 a0 #1", "1.0"),
        ("1", "replace s0 g1 a0 #1", "1.0"),
    ]
    table = invoke(app, "results", "run-a", "--db", db, "--question", "h1")
    assert "input: question: q1? context: context 1" in table


def test_export_and_import_commands_round_trip(app, recorded, tmp_path):
    db, _ = recorded
    assert "exported to" in invoke(
        app, "export", "run-a", "--to", str(tmp_path / "out"), "--db", db
    )
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    assert "imported run run-a" in invoke(app, "import", str(tmp_path / "out"), "--db", target)
    assert invoke(app, "results", "run-a", "--db", target, "-f", "json") == invoke(
        app, "results", "run-a", "--db", db, "-f", "json"
    )


def test_errors_name_what_is_wrong(app, recorded, tmp_path):
    db, _ = recorded
    runner = CliRunner()
    result = runner.invoke(app, ["results", "run-z", "--db", db])
    assert result.exit_code == 2  # bad input
    assert result.stderr == "error: unknown run 'run-z'; known runs: ['run-a']\n"
    result = runner.invoke(app, ["results", "--db", f"sqlite:///{tmp_path / 'missing.db'}"])
    assert result.exit_code == 3 and "no results database at" in result.stderr  # no database
    assert not (tmp_path / "missing.db").exists()  # a reader never creates an empty database
    result = runner.invoke(app, ["import", str(tmp_path), "--db", db])
    assert (
        result.exit_code == 2
        and "neither an export (no run.json) nor a run directory" in result.stderr
    )


def test_default_database_comes_from_the_environment(app, tmp_path, runs_root, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_DB", f"sqlite:///{tmp_path / 'env.db'}")
    invoke(app, "import", str(make_run(runs_root, generations=1)))
    assert (tmp_path / "env.db").is_file()
    assert json.loads(invoke(app, "results", "-f", "json"))[0]["run_id"] == "run-a"

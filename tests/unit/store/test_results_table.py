"""`collapselab results RUN` reads at a glance: the headline metrics (those `status` shows), a
row per metric and generation, the arms side by side, in 100 columns; `--all` every metric;
`results RUN_A RUN_B` compares two runs metric by metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from run_factory import make_run, value
from typer.testing import CliRunner

from collapselab.cli import app


def _edit_metrics(run_dir: Path, change) -> None:
    for path in run_dir.glob("*/seed-*/gen-*/metrics.json"):
        doc = json.loads(path.read_text())
        change(doc)
        path.write_text(json.dumps(doc))


def _add(name: str, v: float):
    def add(doc: dict) -> None:
        doc["metrics"][name] = {"value": v, "version": "1", "higher_is_better": False, "details": {}}
    return add


def _halve_f1(doc: dict) -> None:
    doc["metrics"]["f1"]["value"] /= 2


@pytest.fixture
def two_runs(tmp_path):
    root = tmp_path / "runs"
    a = make_run(root, "run-a", arms=("replace", "accumulate"), generations=3)
    b = make_run(root, "run-b", arms=("replace", "ratio-0.1"), generations=2)
    for run_dir in (a, b):
        _edit_metrics(run_dir, _add("cross_entropy", 1.25))  # not a headline metric
    _edit_metrics(b, _halve_f1)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    for run_dir in (a, b):
        assert CliRunner().invoke(app, ["import", str(run_dir), "--db", db]).exit_code == 0
    return db


def _invoke(*args: str) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_run_shows_its_headline_metrics_arms_side_by_side_in_100_columns(two_runs):
    out = _invoke("results", "run-a", "--db", two_runs)
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= 100
    header = next(ln for ln in lines if " gen " in ln)
    assert [c.strip() for c in header.split("┃")[1:-1]] == ["metric", "gen", "replace", "accumulate"]
    cells = {}
    label = None
    for ln in lines:
        parts = [c.strip() for c in ln.split("│")[1:-1]]
        if len(parts) == 4:
            label = parts[0] or label
            cells[(label, int(parts[1]))] = parts[2:]
    assert set(cells) == {(m, g) for m in ("perplexity ↓", "EM ↑", "F1 ↑") for g in range(3)}  # not cross entropy
    assert cells[("F1 ↑", 2)] == [f"{value('replace', 0, 2):.2f}", f"{value('accumulate', 0, 2):.2f}"]
    every = _invoke("results", "run-a", "--all", "--db", two_runs)
    assert "cross-entropy" in every and max(len(ln) for ln in every.splitlines()) <= 100


def test_machine_formats_and_the_run_list_keep_every_column(two_runs):
    rows = json.loads(_invoke("results", "run-a", "-f", "json", "--db", two_runs))
    assert len(rows) == 6 and rows[0]["cross_entropy"] == 1.25
    listed = _invoke("results", "--db", two_runs)
    assert max(len(ln) for ln in listed.splitlines()) <= 100 and "run-b" in listed and "git_sha" not in listed
    assert "git_sha" in json.loads(_invoke("results", "-f", "json", "--db", two_runs))[0]


def test_two_runs_are_compared_metric_by_metric(two_runs):
    rows = json.loads(_invoke("results", "run-a", "run-b", "-f", "json", "--db", two_runs))
    f1 = {(r["arm"], r["generation"]): r for r in rows if r["metric"] == "f1"}
    assert f1[("replace", 1)] == {"metric": "f1", "arm": "replace", "generation": 1, "run-a": value("replace", 0, 1),
                                  "run-b": value("replace", 0, 1) / 2, "change": pytest.approx(-value("replace", 0, 1) / 2)}
    assert f1[("replace", 2)]["run-b"] is None and f1[("replace", 2)]["change"] is None  # run-b stopped at generation 1
    assert f1[("ratio-0.1", 0)]["run-a"] is None  # an arm only run-b has
    assert {r["metric"] for r in rows} == {"f1", "exact_match", "perplexity", "cross_entropy"}  # json: every metric

    table = _invoke("results", "run-a", "run-b", "--db", two_runs)
    assert max(len(ln) for ln in table.splitlines()) <= 100
    assert "A run-a" in table and "B run-b" in table and "cross-entropy" not in table
    row = next(ln for ln in table.splitlines() if "F1" in ln)  # F1, replace, generation 0
    assert [c.strip() for c in row.split("│")[1:-1]] == [
        "F1 ↑", "replace", "0", f"{value('replace', 0, 0):.2f}", f"{value('replace', 0, 0) / 2:.2f}",
        f"{-value('replace', 0, 0) / 2:.2f}", "-50.0"]
    only_f1 = json.loads(_invoke("results", "run-a", "run-b", "--metric", "f1", "-f", "json", "--db", two_runs))
    assert {r["metric"] for r in only_f1} == {"f1"}


def test_comparing_a_run_with_itself_or_three_runs_is_refused(two_runs):
    result = CliRunner().invoke(app, ["results", "run-a", "run-a", "--db", two_runs])
    assert result.exit_code == 2 and "give two different runs" in result.stderr

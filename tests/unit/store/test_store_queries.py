"""Reads: the questions the report, dashboard and servers ask, and their error messages."""

from __future__ import annotations

import pytest
from run_factory import make_run, value

from collapselab.store import Store, StoreError, import_run_dir


@pytest.fixture(scope="module")
def store(module_db_url, tmp_path_factory):
    db_url, runs_root = module_db_url, tmp_path_factory.mktemp("runs")
    run_dir = make_run(
        runs_root, arms=("replace", "accumulate"), seeds=(0, 1), generations=3, examples=3
    )
    import_run_dir(db_url, run_dir)
    import_run_dir(db_url, make_run(runs_root, run_id="run-b", arms=("base",), generations=1))
    with Store(db_url) as s:
        yield s


def test_list_runs(store):
    runs = store.list_runs()
    assert [(r["run_id"], r["arms"], r["generations"]) for r in runs] == [
        ("run-a", ["replace", "accumulate"], 12),
        ("run-b", ["base"], 1),
    ]
    assert runs[0]["git_sha"] == "abc1234-dirty" and runs[0]["task"] == "qa"


def test_metrics_filters_and_order(store):
    rows = store.metrics("run-a", arm="accumulate", generation=2, seed=1)
    assert [(r["arm"], r["seed"], r["generation"], r["name"]) for r in rows] == [
        ("accumulate", 1, 2, "exact_match"),
        ("accumulate", 1, 2, "f1"),
        ("accumulate", 1, 2, "perplexity"),
    ]
    # Arms come in config order (replace before accumulate), not alphabetically.
    all_f1 = store.metrics("run-a", name="f1")
    assert [r["arm"] for r in all_f1] == ["replace"] * 6 + ["accumulate"] * 6
    assert all_f1[0]["value"] == value("replace", 0, 0)


def test_metrics_table_is_wide(store):
    table = store.metrics_table("run-a", arm="replace")
    assert len(table) == 6
    assert table[1] == {
        "arm": "replace",
        "seed": 0,
        "generation": 1,
        "exact_match": 0.5,
        "f1": value("replace", 0, 1),
        "perplexity": pytest.approx(7.389056, rel=1e-6),
    }


def test_compare_arms_means_over_seeds(store):
    rows = store.compare_arms("run-a", "f1")
    assert [r["generation"] for r in rows] == [0, 1, 2]
    assert list(rows[2]) == ["generation", "replace", "accumulate"]
    expected = (value("accumulate", 0, 2) + value("accumulate", 1, 2)) / 2
    assert rows[2]["accumulate"] == pytest.approx(expected, abs=1e-12)
    assert rows[0]["replace"] > rows[2]["replace"]  # the crafted run collapses


def test_question_history_across_generations(store):
    h = store.question_history("run-a", "h2", arm="replace")
    assert h["input"] == "question: q2? context: context 2" and h["reference"] == '["a2"]'
    assert [(x["seed"], x["generation"]) for x in h["history"]] == [
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
    ]
    assert h["history"][4]["prediction"] == "replace s1 g1 a0 #2"
    assert h["history"][4]["scores"] == {"exact_match": 0.0, "f1": value("replace", 1, 1)}


def test_unknown_names_list_the_known_ones(store):
    with pytest.raises(StoreError, match=r"unknown run 'nope'; known runs: \['run-a', 'run-b'\]"):
        store.metrics("nope")
    with pytest.raises(
        StoreError, match=r"run 'run-a' has no arm 'x'; its arms are \['replace', 'accumulate'\]"
    ):
        store.metrics("run-a", arm="x")
    with pytest.raises(
        StoreError, match=r"no metric 'bleu'; its metrics are \['exact_match', 'f1', 'perplexity'\]"
    ):
        store.compare_arms("run-a", "bleu")
    with pytest.raises(
        StoreError, match=r"no prediction for example 'zz'; ids look like \['h0', 'h1', 'h2'\]"
    ):
        store.question_history("run-a", "zz")


def test_run_resolves_from_id_or_directory(store, tmp_path):
    assert store.resolve_run("run-b") == "run-b"
    elsewhere = make_run(tmp_path, run_id="run-b", generations=1)  # same id, any location
    assert store.resolve_run(elsewhere) == "run-b"
    run = store.run("run-a")
    assert run["manifest"]["packages"] == {"torch": "2.13.0"}
    assert run["arms"][1] == {
        "arm": "accumulate",
        "config": {
            "name": "accumulate",
            "init": "previous",
            "mix": "accumulate",
            "ratio": None,
            "size": None,
        },
    }
    assert "arms:" in run["config_yaml"]

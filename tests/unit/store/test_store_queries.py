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
    # G from the config; expected = arms x seeds x G; no status until the engine records one
    assert [(r["generations_planned"], r["generations_expected"]) for r in runs] == [(3, 12), (1, 1)]
    assert [(r["status"], r["status_at"], r["error"]) for r in runs] == [(None, None, None)] * 2
    assert runs[0]["last_finished"] == "2026-11-22T10:02:00+00:00"


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


def test_metrics_without_details(store):
    rows = store.metrics("run-a", arm="replace", seed=0, generation=1, details=False)
    assert [(r["name"], "details" in r) for r in rows] == [
        ("exact_match", False),
        ("f1", False),
        ("perplexity", False),
    ]
    assert rows[1]["value"] == value("replace", 0, 1)


def test_predictions_of_one_generation_in_file_order(store):
    rows = store.predictions("run-a", "accumulate", 1, 2)
    assert [r["example_id"] for r in rows] == ["h0", "h1", "h2"]
    assert rows[2]["prediction"] == "accumulate s1 g2 a0 #2"
    assert rows[1]["scores"] == {"exact_match": 1.0, "f1": value("accumulate", 1, 2)}


def test_questions_are_the_test_set_once(store):
    assert store.questions("run-a") == [
        {"example_id": f"h{i}", "input": f"question: q{i}? context: context {i}", "reference": f'["a{i}"]'}
        for i in range(3)
    ]


def test_documents_are_each_generations_metrics_json(store):
    docs = store.documents("run-a", arm="replace")
    assert [(d["seed"], d["generation"]) for d in docs] == [(s, g) for s in (0, 1) for g in range(3)]
    assert docs[4]["document"]["metrics"]["f1"]["value"] == value("replace", 1, 1)
    assert docs[4]["document"]["refinery"]["rejected"] == {"duplicate": 1, "too_short": 2}
    assert docs[4]["finished"] == "2026-11-22T10:01:00+00:00"


def test_records_come_from_the_indexed_files(store):
    synthetic = store.records("run-a", "replace", 1, 2, "synthetic")
    assert [(r.id, r.source, r.generation, r.parent_id) for r in synthetic] == [
        (f"s2-h{i}", "synthetic", 2, f"h{i}") for i in range(3)
    ]
    assert [r.id for r in store.records("run-a", "replace", 1, 2, "rejected")] == ["s2-h0"]
    with pytest.raises(
        StoreError, match=r"run 'run-a', arm 'replace', seed 0, generation 7: no train data file is indexed"
    ):
        store.records("run-a", "replace", 0, 7, "train")

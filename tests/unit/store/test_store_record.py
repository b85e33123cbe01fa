"""Writes: what record_run / record_generation put in the database, and what they refuse."""

from __future__ import annotations

import json

import pytest
from run_factory import make_run, value, write_generation

from collapselab.store import Store, StoreError, import_run_dir, record_generation, record_run
from collapselab.store.db import DEFAULT_URL, resolve_url


def test_generation_rows_match_its_files(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=2, examples=3)
    import_run_dir(db_url, run_dir)
    with Store(db_url) as store:
        gens = store.generations("run-a")
        assert [(g["arm"], g["seed"], g["generation"]) for g in gens] == [
            ("replace", 0, 0),
            ("replace", 0, 1),
        ]
        assert gens[1]["train_losses"] == [2.5, 2.0, 1.75]
        assert (gens[1]["n_metrics"], gens[1]["n_predictions"], gens[1]["refinery_attempts"]) == (
            3,
            3,
            11,
        )
        assert gens[1]["finished"] == "2026-11-22T10:01:00+00:00"
        f1 = store.metrics("run-a", generation=1, name="f1")
        assert [(m["value"], m["version"], m["higher_is_better"]) for m in f1] == [
            (value("replace", 0, 1), "1", True)
        ]
        assert store.refinery("run-a")[1]["rejected"] == {"duplicate": 1, "too_short": 2}
        files = {f["kind"]: f for f in store.data_files("run-a") if f["generation"] == 0}
        assert set(files) == {"train", "synthetic", "rejected", "predictions", "metrics"}
        assert files["train"]["path"] == "replace/seed-0/gen-0/train.parquet"
        assert files["train"]["rows"] == 3 and len(files["train"]["sha256"]) == 64


def test_redoing_a_generation_replaces_its_rows(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1, examples=4)
    import_run_dir(db_url, run_dir)
    # The redo has fewer examples and no refinery: nothing of the first attempt may survive.
    write_generation(run_dir, "replace", 0, 0, examples=2, attempt=1, refinery=False)
    (run_dir / "replace/seed-0/gen-0/rejected.parquet").unlink()
    record_generation(db_url, run_dir, "replace", 0, 0)
    record_generation(db_url, run_dir, "replace", 0, 0)  # and again: idempotent
    with Store(db_url) as store:
        (gen,) = store.generations("run-a")
        assert (gen["n_predictions"], gen["refinery_attempts"], gen["train_losses"][-1]) == (
            2,
            None,
            2.75,
        )
        assert store.refinery("run-a") == []
        assert [m["details"] for m in store.metrics("run-a", name="f1")] == [{"attempt": 1}]
        history = store.question_history("run-a", "h1")["history"]
        assert [h["prediction"] for h in history] == ["replace s0 g0 a1 #1"]
        assert {f["kind"] for f in store.data_files("run-a")} == {
            "train",
            "synthetic",
            "predictions",
            "metrics",
        }


def test_record_run_is_idempotent_and_adds_new_arms(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1)
    import_run_dir(db_url, run_dir)
    record_run(db_url, run_dir)
    config = (
        (run_dir / "config.yaml")
        .read_text()
        .replace("arms:\n", "arms:\n- name: ratio\n  mix: ratio\n")
    )
    (run_dir / "config.yaml").write_text(config)
    record_run(db_url, run_dir)
    with Store(db_url) as store:
        assert [a["arm"] for a in store.run("run-a")["arms"]] == ["ratio", "replace"]
        assert len(store.list_runs()) == 1
        assert len(store.generations("run-a")) == 1  # the run's generations are untouched


def test_malformed_metrics_json_names_file_and_key(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1)
    record_run(db_url, run_dir)
    path = run_dir / "replace/seed-0/gen-0/metrics.json"
    doc = json.loads(path.read_text())
    doc["metrics"]["f1"]["value"] = "high"
    path.write_text(json.dumps(doc))
    with pytest.raises(
        StoreError,
        match=r"gen-0/metrics.json: key 'metrics.f1.value': Input should be a valid number \(got 'high'\)",
    ):
        record_generation(db_url, run_dir, "replace", 0, 0)
    doc["metrics"]["f1"]["value"] = 0.5
    del doc["timings"]
    path.write_text(json.dumps(doc))
    with pytest.raises(StoreError, match=r"metrics.json: key 'timings': Field required"):
        record_generation(db_url, run_dir, "replace", 0, 0)


def test_timings_of_an_interrupted_step_may_be_missing(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1)
    path = run_dir / "replace/seed-0/gen-0/metrics.json"
    doc = json.loads(path.read_text())
    del doc["timings"]["train_s"]  # trained by a process that died before writing timings
    doc["train"]["tokens"] = None
    path.write_text(json.dumps(doc))
    import_run_dir(db_url, run_dir)
    with Store(db_url) as store:
        (gen,) = store.generations("run-a")
        assert (gen["train_s"], gen["generate_s"], gen["train_tokens"]) == (None, 0.5, None)


def test_bad_predictions_and_unfinished_generation_are_named(db_url, runs_root):
    import pyarrow as pa
    import pyarrow.parquet as pq

    run_dir = make_run(runs_root, arms=("replace",), generations=2)
    record_run(db_url, run_dir)
    pq.write_table(
        pa.table({"example_id": ["h0"], "input": ["x"]}),
        run_dir / "replace/seed-0/gen-0/predictions.parquet",
    )
    with pytest.raises(
        StoreError,
        match=r"predictions.parquet: missing column\(s\) \['reference', 'prediction', 'scores'\]",
    ):
        record_generation(db_url, run_dir, "replace", 0, 0)
    (run_dir / "replace/seed-0/gen-1/DONE").unlink()
    with pytest.raises(
        StoreError, match=r"gen-1/DONE: file does not exist \(is the generation finished\?\)"
    ):
        record_generation(db_url, run_dir, "replace", 0, 1)
    with Store(db_url) as store:
        assert store.generations("run-a") == []  # a failed record writes nothing


def test_generation_needs_its_run_and_a_known_arm(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1)
    with pytest.raises(StoreError, match="run 'run-a' .* is not recorded; call record_run"):
        record_generation(db_url, run_dir, "replace", 0, 0)
    record_run(db_url, run_dir)
    write_generation(run_dir, "ghost", 0, 0)
    with pytest.raises(
        StoreError, match=r"arm 'ghost' is not in its config; arms are \['replace'\]"
    ):
        record_generation(db_url, run_dir, "ghost", 0, 0)


def test_default_url_is_env_then_sqlite_under_runs(tmp_path, monkeypatch, runs_root):
    monkeypatch.setenv("COLLAPSELAB_DB", "sqlite:///elsewhere.db")
    assert resolve_url(None) == "sqlite:///elsewhere.db"
    assert resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.delenv("COLLAPSELAB_DB")
    assert resolve_url(None) == DEFAULT_URL == "sqlite:///runs/collapselab.db"
    run_dir = make_run(runs_root, generations=1)
    monkeypatch.chdir(tmp_path / "runs" / "quick")  # a folder without runs/: the store makes it
    record_run(None, run_dir)
    assert (tmp_path / "runs/quick/runs/collapselab.db").is_file()


def test_run_status_is_recorded_with_its_error_line(db_url, runs_root):
    from collapselab.store import record_run_status

    run_dir = make_run(runs_root, arms=("replace",), generations=1, examples=2)
    with pytest.raises(StoreError, match=r"run 'run-a' .* is not recorded; call record_run before"):
        record_run_status(db_url, run_dir, "running")
    import_run_dir(db_url, run_dir)
    with Store(db_url) as store:
        before = store.data_version()
        record_run_status(db_url, run_dir, "running")
        (run,) = store.list_runs()
        assert (run["status"], run["error"]) == ("running", None)
        started = run["status_at"]
        assert store.data_version() != before  # a polling reader sees the change
        record_run_status(db_url, run_dir, "failed", error="RuntimeError: out of memory\n  at step 3")
        (run,) = store.list_runs()
        assert (run["status"], run["error"]) == ("failed", "RuntimeError: out of memory")
        assert run["status_at"] > started
        record_run_status(db_url, run_dir, "interrupted")  # Ctrl-C or SIGTERM
        assert [(r["status"], r["error"]) for r in store.list_runs()] == [("interrupted", None)]
        record_run_status(db_url, run_dir, "done")
        assert [(r["status"], r["error"]) for r in store.list_runs()] == [("done", None)]
        assert store.run("run-a")["run_dir"] == str(run_dir.resolve())
    with pytest.raises(ValueError, match=r"run status must be one of \('running', 'done', 'failed', 'interrupted'\), got 'paused'"):
        record_run_status(db_url, run_dir, "paused")
    with pytest.raises(ValueError, match="an error line goes with status 'failed' only"):
        record_run_status(db_url, run_dir, "done", error="x")


def test_data_version_changes_when_a_generation_is_redone(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1, examples=2)
    import_run_dir(db_url, run_dir)
    with Store(db_url) as store:
        before = store.data_version()
        assert store.data_version() == before  # stable while nothing is written
        gdir = write_generation(run_dir, "replace", 0, 0, examples=2, attempt=1)
        (gdir / "DONE").write_text(json.dumps({"finished": "2026-11-23T00:00:00+00:00"}))
        record_generation(db_url, run_dir, "replace", 0, 0)
        assert store.data_version() != before


def test_records_name_a_file_that_moved_or_changed(db_url, runs_root):
    run_dir = make_run(runs_root, arms=("replace",), generations=1, examples=2)
    import_run_dir(db_url, run_dir)
    path = run_dir / "replace/seed-0/gen-0/synthetic.parquet"
    with Store(db_url) as store:
        assert len(store.records("run-a", "replace", 0, 0, "synthetic")) == 2
        path.write_bytes(path.read_bytes() + b"x")
        with pytest.raises(StoreError, match=r"synthetic.parquet: changed since it was recorded"):
            store.records("run-a", "replace", 0, 0, "synthetic")
        path.unlink()
        with pytest.raises(StoreError, match=r"synthetic.parquet: the synthetic data of run 'run-a', arm 'replace', seed 0, generation 0 is not there"):
            store.records("run-a", "replace", 0, 0, "synthetic")

"""Export and import: lossless round trips, and files a person can read."""

from __future__ import annotations

import csv
import json

import pytest
from run_factory import every_answer, make_run, write_generation

from collapselab.store import Store, StoreError, export_run, import_export, import_run_dir


def test_export_then_import_into_empty_database_answers_identically(
    db_url_pair, runs_root, tmp_path
):
    source, target = db_url_pair
    run_dir = make_run(runs_root, seeds=(0, 1), generations=2, examples=3)
    import_run_dir(source, run_dir)
    export_run(source, "run-a", tmp_path / "export")
    assert import_export(target, tmp_path / "export") == "run-a"
    with Store(source) as a, Store(target) as b:
        expected = every_answer(a, "run-a")
        assert every_answer(b, "run-a") == expected
    # Importing again replaces the run: still identical, nothing doubled.
    import_export(target, tmp_path / "export")
    with Store(target) as b:
        assert every_answer(b, "run-a") == expected


def test_per_generation_json_reproduces_metrics_json(tmp_path, runs_root):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    run_dir = make_run(runs_root, arms=("replace",), generations=2)
    gdir = write_generation(run_dir, "replace", 0, 1, refinery=False)  # refinery: null survives too
    doc = json.loads((gdir / "metrics.json").read_text())
    doc["copied_from"] = "elsewhere"  # fields the schema has no column for survive as well
    doc["sizes"]["train_synthetic_share"] = 0.25
    (gdir / "metrics.json").write_text(json.dumps(doc))
    import_run_dir(db, run_dir)
    out = export_run(db, run_dir, tmp_path / "export")  # a run directory names the run
    for g in (0, 1):
        exported = json.loads((out / f"results/replace/seed-0/gen-{g}.json").read_text())
        original = json.loads((run_dir / f"replace/seed-0/gen-{g}/metrics.json").read_text())
        done = json.loads((run_dir / f"replace/seed-0/gen-{g}/DONE").read_text())
        assert exported == original | {"finished": done["finished"]}
    assert (out / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()
    assert (out / "manifest.json").read_text() == (run_dir / "manifest.json").read_text()


def test_metrics_table_csv_has_one_row_per_generation(tmp_path, runs_root):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    import_run_dir(db, make_run(runs_root, arms=("replace", "accumulate"), generations=2))
    out = export_run(db, "run-a", tmp_path / "export")
    with (out / "metrics_table.csv").open() as f:
        rows = list(csv.DictReader(f))
    with Store(db) as store:
        expected = store.metrics_table("run-a")
    assert [{k: str(v) for k, v in r.items()} for r in expected] == rows
    with (out / "csv/predictions.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2 * 2 * 4


def test_import_run_dir_records_only_finished_generations(tmp_path, runs_root):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    run_dir = make_run(runs_root, arms=("replace",), generations=2)
    write_generation(run_dir, "replace", 0, 2, done=False)  # the engine is still writing it
    assert import_run_dir(db, run_dir) == [("replace", 0, 0), ("replace", 0, 1)]


def test_import_refuses_what_is_not_an_export(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(StoreError, match=r"run.json: not a collapselab export"):
        import_export(f"sqlite:///{tmp_path / 'r.db'}", tmp_path)


def test_export_from_before_a_nullable_column_still_imports(tmp_path, runs_root):
    import pyarrow.parquet as pq

    db = f"sqlite:///{tmp_path / 'r.db'}"
    import_run_dir(db, make_run(runs_root, arms=("replace",), generations=1))
    out = export_run(db, "run-a", tmp_path / "export")
    gens = out / "parquet/generations.parquet"
    pq.write_table(pq.read_table(gens).drop_columns(["metrics_json"]), gens)  # as before m003
    target = f"sqlite:///{tmp_path / 't.db'}"
    import_export(target, out)
    with Store(db) as a, Store(target) as b:
        assert b.metrics("run-a") == a.metrics("run-a")
    metrics = out / "parquet/metrics.parquet"
    pq.write_table(
        pq.read_table(metrics).drop_columns(["value"]).append_column("colour", [["red"] * 3]),
        metrics,
    )
    with pytest.raises(
        StoreError,
        match=r"metrics.parquet: unknown column\(s\) \['colour'\], missing required column\(s\) \[\]",
    ):
        import_export(target, out)

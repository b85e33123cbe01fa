"""Numbered migrations: they build exactly the current schema, and upgrade old databases
in place without losing rows."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from run_factory import make_run, value

from collapselab.store import Store, StoreError, export_run, record_generation, record_run
from collapselab.store import schema as current
from collapselab.store.db import connect, write_transaction
from collapselab.store.folder_rows import read_generation, read_run
from collapselab.store.migrations import current_version, latest_version, migrations, upgrade

M001_TABLES = ("runs", "arms", "generations", "metrics", "predictions")


def test_migrations_are_numbered_without_gaps():
    names = [m.name for m in migrations()]
    assert names[:4] == [
        "m001_initial",
        "m002_refinery_and_data_files",
        "m003_generation_document",
        "m004_run_status",
    ]
    assert latest_version() == len(names)


def test_migrated_database_matches_the_current_schema(db_url):
    engine = connect(db_url)
    inspector = sa.inspect(engine)
    assert set(inspector.get_table_names()) == {*current.metadata.tables, "schema_version"}
    for table in current.metadata.sorted_tables:
        reflected = inspector.get_columns(table.name)
        assert [c["name"] for c in reflected] == [c.name for c in table.columns], table.name
        for col, ref in zip(table.columns, reflected, strict=True):
            assert ref["type"]._type_affinity is col.type._type_affinity, f"{table.name}.{col.name}"
            assert ref["nullable"] == (col.nullable and not col.primary_key), (
                f"{table.name}.{col.name}"
            )
        pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], table.name
    engine.dispose()


def test_database_at_m001_upgrades_in_place_without_loss(db_url, runs_root, tmp_path):
    run_dir = make_run(runs_root, arms=("replace",), generations=2, examples=3)
    engine = connect(db_url, migrate=False)
    assert upgrade(engine, target=1) == ["m001_initial"]
    # Write rows the way a version-1 collapselab did: only the tables m001 created.
    old = sa.MetaData()
    tables = {name: sa.Table(name, old, autoload_with=engine) for name in M001_TABLES}
    run_row, arm_rows = read_run(run_dir)
    with write_transaction(engine) as conn:
        conn.execute(tables["runs"].insert(), [{k: run_row[k] for k in tables["runs"].c.keys()}])
        conn.execute(tables["arms"].insert(), arm_rows)
        for g in (0, 1):
            rows = read_generation(run_dir, "run-a", "replace", 0, g)
            for name in ("generations", "metrics", "predictions"):
                conn.execute(tables[name].insert(), rows[name])

    assert upgrade(engine) == [
        "m002_refinery_and_data_files",
        "m003_generation_document",
        "m004_run_status",
    ]
    assert upgrade(engine) == []  # idempotent
    with engine.connect() as conn:
        assert current_version(conn) == latest_version()
    engine.dispose()

    with Store(db_url) as store:
        assert [m["value"] for m in store.metrics("run-a", name="f1")] == [
            value("replace", 0, 0),
            value("replace", 0, 1),
        ]
        history = store.question_history("run-a", "h2")["history"]
        assert [h["prediction"] for h in history] == ["replace s0 g0 a0 #2", "replace s0 g1 a0 #2"]
        gens = store.generations("run-a")
        assert [(g["n_metrics"], g["n_predictions"], g["refinery_attempts"]) for g in gens] == [
            (3, 3, None)
        ] * 2
        assert store.run("run-a")["manifest"] == json.loads((run_dir / "manifest.json").read_text())
    # The export rebuilds a pre-m003 generation's document from its columns.
    out = export_run(db_url, "run-a", tmp_path / "export")
    for g in (0, 1):
        original = json.loads((run_dir / f"replace/seed-0/gen-{g}/metrics.json").read_text())
        exported = json.loads((out / f"results/replace/seed-0/gen-{g}.json").read_text())
        assert exported == original | {"refinery": None, "finished": f"2026-11-22T10:0{g}:00+00:00"}
    with Store(db_url) as store:  # m004's columns are NULL: not recorded then
        (run,) = store.list_runs()
        assert (run["status"], run["generations_planned"], run["generations_expected"]) == (None, None, None)
        assert store.run("run-a")["run_dir"] is None
    # Recording the run and a generation again fills in what m002, m003 and m004 added.
    record_run(db_url, run_dir)
    record_generation(db_url, run_dir, "replace", 0, 1)
    with Store(db_url) as store:
        assert [g["refinery_attempts"] for g in store.generations("run-a")] == [None, 11]
        assert len(store.data_files("run-a")) == 5
        assert store.list_runs()[0]["generations_expected"] == 2
        assert len(store.records("run-a", "replace", 0, 1, "synthetic")) == 3


def test_database_from_a_newer_collapselab_is_refused(db_url):
    engine = connect(db_url)
    with write_transaction(engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'm099_future', 'x')"
            )
        )
    engine.dispose()
    with pytest.raises(StoreError, match="schema version 99 is newer than this collapselab knows"):
        connect(db_url)

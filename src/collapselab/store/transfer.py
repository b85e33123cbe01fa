"""Export a run to files and import it back, losslessly.

An export directory holds:

    run.json                         the run row and its arms (the import reads this ...)
    parquet/<table>.parquet          ... and these: every generation table, typed
    csv/<table>.csv                  the same tables for spreadsheets
    metrics_table.csv                one row per (arm, seed, generation), one column per metric
    results/<arm>/seed-<s>/gen-<g>.json   each generation's results in the metrics.json shape
    config.yaml, manifest.json       verbatim, for reading without the database

Importing replaces every row of the run, so importing twice is the same as once.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from collapselab.records import atomic_write_json, atomic_write_parquet, atomic_write_text
from collapselab.store import schema
from collapselab.store.db import StoreError, connect, read_transaction, write_transaction
from collapselab.store.folder_rows import load_json
from collapselab.store.migrations import current_version
from collapselab.store.queries import resolve_run_id
from collapselab.store.record import delete_run
from collapselab.textio import read_parquet

EXPORT_FORMAT = "collapselab-export"
EXPORT_VERSION = 1
# Generation tables, parents first (the order an import inserts them).
TABLES: tuple[sa.Table, ...] = tuple(reversed(schema.GENERATION_TABLES))


def export_run(url: str | None, run_id: str | Path, out_dir: Path) -> Path:
    """Write every row of a run (id or run directory) under `out_dir`; returns out_dir."""
    import pyarrow as pa

    out_dir = Path(out_dir)
    engine = connect(url)
    try:
        with read_transaction(engine) as conn:  # one snapshot for the whole export
            run_id = resolve_run_id(conn, run_id)
            run_row = dict(
                conn.execute(sa.select(schema.runs).where(schema.runs.c.run_id == run_id))
                .mappings()
                .one()
            )
            arms = [
                dict(r)
                for r in conn.execute(
                    sa.select(schema.arms).where(schema.arms.c.run_id == run_id)
                ).mappings()
            ]
            tables = {
                t.name: [
                    dict(r)
                    for r in conn.execute(
                        sa.select(t).where(t.c.run_id == run_id).order_by(*t.primary_key.columns)
                    ).mappings()
                ]
                for t in TABLES
            }
            version = current_version(conn)
    finally:
        engine.dispose()
    arms.sort(key=lambda a: a["position"])
    atomic_write_json(
        out_dir / "run.json",
        {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "schema_version": version,
            "run": run_row,
            "arms": arms,
        },
    )
    atomic_write_text(out_dir / "config.yaml", run_row["config_yaml"])
    atomic_write_text(out_dir / "manifest.json", run_row["manifest"])
    for table in TABLES:
        rows = tables[table.name]
        atomic_write_parquet(out_dir / "parquet" / f"{table.name}.parquet", pa.Table.from_pylist(rows, schema=_arrow_schema(table)))
        _write_csv(out_dir / "csv" / f"{table.name}.csv", [c.name for c in table.columns], rows)
    _write_results(out_dir, tables)
    _write_metrics_table(out_dir / "metrics_table.csv", tables["metrics"], arms)
    return out_dir


def import_export(url: str | None, export_dir: Path) -> str:
    """Load an export written by `export_run`, replacing the run's rows; returns the run id."""
    export_dir = Path(export_dir)

    meta = load_json(export_dir / "run.json")
    if not isinstance(meta, dict) or meta.get("format") != EXPORT_FORMAT:
        raise StoreError(
            f"{export_dir / 'run.json'}: not a collapselab export (key 'format' is not {EXPORT_FORMAT!r})"
        )
    if meta.get("format_version") != EXPORT_VERSION:
        raise StoreError(
            f"{export_dir / 'run.json'}: export format_version {meta.get('format_version')!r}, this collapselab reads {EXPORT_VERSION}"
        )
    run_row = _row(meta.get("run"), schema.runs, f"{export_dir / 'run.json'}: key 'run'")
    arms_list = meta.get("arms")
    if not isinstance(arms_list, list):
        raise StoreError(f"{export_dir / 'run.json'}: key 'arms' must be a list of arm rows, got {arms_list!r:.60}")
    arms = [_row(a, schema.arms, f"{export_dir / 'run.json'}: key 'arms.{i}'") for i, a in enumerate(arms_list)]
    tables = {}
    for table in TABLES:
        path = export_dir / "parquet" / f"{table.name}.parquet"
        if not path.is_file():
            raise StoreError(f"{path}: file does not exist (incomplete export)")
        tables[table.name] = _read_table(path, table)
    engine = connect(url)
    try:
        with write_transaction(engine) as conn:
            delete_run(conn, run_row["run_id"])
            conn.execute(schema.runs.insert().values(**run_row))
            conn.execute(schema.arms.insert(), arms)
            for table in TABLES:
                if tables[table.name]:
                    conn.execute(table.insert(), tables[table.name])
    finally:
        engine.dispose()
    return run_row["run_id"]


def _row(value: Any, table: sa.Table, where: str) -> dict[str, Any]:
    """A row of `table` from run.json, checked to name exactly the table's columns."""
    if not isinstance(value, dict):
        raise StoreError(f"{where}: expected an object of {table.name} columns, got {value!r:.60}")
    columns = set(table.columns.keys())
    unknown, missing = sorted(set(value) - columns), sorted(c.name for c in table.columns if c.name not in value and not c.nullable)
    if unknown or missing:
        raise StoreError(f"{where}: unknown column(s) {unknown}, missing column(s) {missing}")
    return value


def _read_table(path: Path, table: sa.Table) -> list[dict[str, Any]]:
    """Rows of an exported table. An export written before a migration added a nullable
    column still imports (the column is NULL); anything else that differs is an error."""
    parquet = read_parquet(path, error=StoreError)
    rows = parquet.to_pylist()
    have = set(parquet.column_names)
    unknown = have - set(table.columns.keys())
    missing = [c for c in table.columns if c.name not in have]
    required = [c.name for c in missing if not c.nullable or c.primary_key]
    if unknown or required:
        raise StoreError(
            f"{path}: unknown column(s) {sorted(unknown)}, missing required column(s) {required}; "
            f"table {table.name!r} has {list(table.columns.keys())}"
        )
    for row in rows:
        row.update({c.name: None for c in missing})
    return rows


def _arrow_schema(table: sa.Table) -> Any:
    import pyarrow as pa

    def arrow_type(col: sa.Column) -> Any:
        if isinstance(col.type, sa.Boolean):
            return pa.bool_()
        if isinstance(col.type, sa.Integer):  # BigInteger is an Integer
            return pa.int64()
        if isinstance(col.type, sa.Float):
            return pa.float64()
        if isinstance(col.type, sa.String):  # Text is a String
            return pa.string()
        raise TypeError(f"{table.name}.{col.name}: no Parquet type for {col.type!r}")

    return pa.schema(
        [pa.field(c.name, arrow_type(c), nullable=bool(c.nullable)) for c in table.columns]
    )


def _write_csv(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    out = io.StringIO(newline="")
    w = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, out.getvalue())  # a full disk leaves no cut-short CSV behind


def _write_results(out_dir: Path, tables: dict[str, list[dict[str, Any]]]) -> None:
    """One JSON per generation in the shape of the engine's metrics.json (plus `finished`)."""

    def key(r: dict[str, Any]) -> tuple[str, int, int]:
        return (r["arm"], r["seed"], r["generation"])

    def group(name: str) -> dict[tuple[str, int, int], list[dict[str, Any]]]:
        out: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        for r in tables[name]:
            out.setdefault(key(r), []).append(r)
        return out

    metrics, refinery, rejections = (
        group("metrics"),
        group("refinery"),
        group("refinery_rejections"),
    )
    for g in tables["generations"]:
        k = key(g)
        ref = refinery.get(k)
        path = out_dir / "results" / g["arm"] / f"seed-{g['seed']}" / f"gen-{g['generation']}.json"
        if g["metrics_json"] is not None:
            atomic_write_json(path, json.loads(g["metrics_json"]) | {"finished": g["finished"]})
            continue
        # Recorded before migration m003: rebuild the document from the columns.
        doc = {
            "arm": g["arm"],
            "seed": g["seed"],
            "generation": g["generation"],
            "finished": g["finished"],
            "metrics": {
                m["name"]: {
                    "value": m["value"],
                    "version": m["version"],
                    "higher_is_better": m["higher_is_better"],
                    "details": json.loads(m["details"]),
                }
                for m in metrics.get(k, [])
            },
            "train": {
                "losses": json.loads(g["train_losses"]),
                "steps": g["train_steps"],
                "tokens": g["train_tokens"],
                "seconds": g["train_seconds"],
            },
            "timings": {
                "train_s": g["train_s"],
                "generate_s": g["generate_s"],
                "evaluate_s": g["evaluate_s"],
            },
            "sizes": {
                "train_records": g["train_records"],
                "synthetic_records": g["synthetic_records"],
            },
            "refinery": None
            if ref is None
            else {
                "attempts": ref[0]["attempts"],
                "passed": ref[0]["passed"],
                "rejected": {r["reason"]: r["count"] for r in rejections.get(k, [])},
            },
        }
        atomic_write_json(path, doc)


def _write_metrics_table(
    path: Path, metric_rows: list[dict[str, Any]], arms: list[dict[str, Any]]
) -> None:
    order = {a["arm"]: a["position"] for a in arms}
    names = sorted({m["name"] for m in metric_rows})
    wide: dict[tuple[str, int, int], dict[str, Any]] = {}
    for m in metric_rows:
        k = (m["arm"], m["seed"], m["generation"])
        wide.setdefault(k, {"arm": k[0], "seed": k[1], "generation": k[2]})[m["name"]] = m["value"]
    rows = [wide[k] for k in sorted(wide, key=lambda k: (order[k[0]], k[1], k[2]))]
    _write_csv(path, ["arm", "seed", "generation", *names], rows)

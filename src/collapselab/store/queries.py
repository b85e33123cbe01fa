"""Reads: the questions researchers ask of the results database.

Every method reads in one snapshot (`read_transaction`), so a query that runs while the
engine records a generation sees that generation whole or not at all. Rows come back as
plain dicts, sorted in Python (arms in config order, then seed, generation, name) so that
SQLite and PostgreSQL, whose string collations differ, return identical results.
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import fmean
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collapselab.records import read_records
from collapselab.rundir.metrics_file import GenerationMetrics
from collapselab.store import schema
from collapselab.store.db import StoreError, connect, read_transaction, require_database
from collapselab.store.folder_rows import read_manifest_run_id
from collapselab.store.indexed import indexed_path
from collapselab.textio import read_parquet

Row = dict[str, Any]


class Store:
    """Query API over one database.

    Args:
        url: SQLAlchemy URL; None means `$COLLAPSELAB_DB`, else `sqlite:///runs/collapselab.db`.
        must_exist: refuse a SQLite file that does not exist yet instead of creating an empty
            database (a reader pointed at the wrong path should hear so).
    """

    def __init__(self, url: str | None = None, *, must_exist: bool = True) -> None:
        if must_exist:
            require_database(url)
        self.engine = connect(url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_runs(self) -> list[Row]:
        """One row per run: id, experiment, task, created, git SHA, config hash, arms, how many
        generations are recorded, and its status (running / done / failed / interrupted, when it was
        recorded, the error line), `generations_planned` (G) and `generations_expected` (arms x
        seeds x G; None where the run was recorded before the store kept G)."""
        r, g = schema.runs, schema.generations
        n_gen = sa.select(sa.func.count()).where(g.c.run_id == r.c.run_id).scalar_subquery()
        last = sa.select(sa.func.max(g.c.finished)).where(g.c.run_id == r.c.run_id).scalar_subquery()
        cols = [
            *(r.c[c] for c in ("run_id", "experiment", "task", "created", "git_sha", "config_hash")),
            *(r.c[c] for c in ("status", "status_at", "error", "generations_planned", "manifest")),
        ]
        with read_transaction(self.engine) as conn:
            q = sa.select(*cols, n_gen.label("generations"), last.label("last_finished"))
            rows = [dict(m) for m in conn.execute(q).mappings()]
            for row in rows:
                row["arms"] = list(_arm_order(conn, row["run_id"]))
        for row in rows:
            seeds = json.loads(row.pop("manifest"))["seeds"]
            planned = row["generations_planned"]
            row["generations_expected"] = (
                None if planned is None else planned * len(row["arms"]) * len(seeds)
            )
        return sorted(rows, key=lambda x: (x["created"] or "", x["run_id"]))

    def resolve_run(self, run: str | Path) -> str:
        """The run id for `run`: a recorded run id, or a run directory holding manifest.json."""
        with read_transaction(self.engine) as conn:
            return resolve_run_id(conn, run)

    def run(self, run_id: str) -> Row:
        """The run row with its parsed manifest, verbatim config YAML and arms in order."""
        with read_transaction(self.engine) as conn:
            _check_run(conn, run_id)
            row = dict(
                conn.execute(sa.select(schema.runs).where(schema.runs.c.run_id == run_id))
                .mappings()
                .one()
            )
            arms = (
                conn.execute(sa.select(schema.arms).where(schema.arms.c.run_id == run_id))
                .mappings()
                .all()
            )
        row["manifest"] = json.loads(row["manifest"])
        row["arms"] = [
            {"arm": a["arm"], "config": json.loads(a["config"])}
            for a in sorted(arms, key=lambda a: a["position"])
        ]
        return row

    def generations(self, run_id: str, arm: str | None = None) -> list[Row]:
        """Each recorded generation: status, timings, training summary and losses, data sizes,
        refinery counts, and how many metric and prediction rows it holds."""
        g, m, p, ref = schema.generations, schema.metrics, schema.predictions, schema.refinery

        def count(t: sa.Table) -> Any:
            return sa.select(sa.func.count()).where(*_same_generation(t, g)).scalar_subquery()

        q = (
            sa.select(
                *(c for c in g.columns if c.name != "metrics_json"),
                ref.c.attempts.label("refinery_attempts"),
                ref.c.passed.label("refinery_passed"),
                count(m).label("n_metrics"),
                count(p).label("n_predictions"),
            )
            .select_from(g.outerjoin(ref, sa.and_(*_same_generation(ref, g))))
            .where(g.c.run_id == run_id)
        )
        if arm is not None:
            q = q.where(g.c.arm == arm)
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id, arm)
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for row in rows:
            row["train_losses"] = json.loads(row["train_losses"])
        return sorted(rows, key=lambda r: (order[r["arm"]], r["seed"], r["generation"]))

    def metrics(
        self,
        run_id: str,
        arm: str | None = None,
        generation: int | None = None,
        seed: int | None = None,
        name: str | None = None,
        *,
        details: bool = True,
    ) -> list[Row]:
        """Metric rows (arm, seed, generation, name, value, version, higher_is_better, details),
        filtered by any of arm, generation, seed and metric name. `details=False` leaves the
        details out (they can hold a value per synthetic sequence: large for a whole run)."""
        t = schema.metrics
        cols = [c for c in t.columns if details or c.name != "details"]
        q = sa.select(*cols).where(t.c.run_id == run_id)
        for col, value in (
            ("arm", arm),
            ("generation", generation),
            ("seed", seed),
            ("name", name),
        ):
            if value is not None:
                q = q.where(t.c[col] == value)
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id, arm)
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for row in rows:
            del row["run_id"]
            if details:
                row["details"] = json.loads(row["details"])
        return sorted(rows, key=lambda r: (order[r["arm"]], r["seed"], r["generation"], r["name"]))

    def metrics_table(self, run_id: str, arm: str | None = None) -> list[Row]:
        """Wide table: one row per (arm, seed, generation), one column per metric."""
        rows = self.metrics(run_id, arm=arm)
        names = sorted({r["name"] for r in rows})
        table: dict[tuple[str, int, int], Row] = {}
        for r in rows:
            key = (r["arm"], r["seed"], r["generation"])
            table.setdefault(
                key, {"arm": key[0], "seed": key[1], "generation": key[2], **dict.fromkeys(names)}
            )
            table[key][r["name"]] = r["value"]
        return list(table.values())  # already in (arm order, seed, generation) order

    def question_history(self, run_id: str, example_id: str, arm: str | None = None) -> Row:
        """One test question across generations: its input and reference once, then each
        (arm, seed, generation)'s prediction and per-example scores."""
        p = schema.predictions
        q = sa.select(p).where(p.c.run_id == run_id, p.c.example_id == example_id)
        if arm is not None:
            q = q.where(p.c.arm == arm)
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id, arm)
            rows = conn.execute(q).mappings().all()
            if not rows:
                sample = (
                    conn.execute(
                        sa.select(p.c.example_id)
                        .where(p.c.run_id == run_id)
                        .distinct()
                        .order_by(p.c.example_id)
                        .limit(5)
                    )
                    .scalars()
                    .all()
                )
                raise StoreError(
                    f"run {run_id!r} has no prediction for example {example_id!r}; ids look like {sample}"
                )
        rows = sorted(rows, key=lambda r: (order[r["arm"]], r["seed"], r["generation"]))
        return {
            "example_id": example_id,
            "input": rows[0]["input"],
            "reference": rows[0]["reference"],
            "history": [
                {
                    "arm": r["arm"],
                    "seed": r["seed"],
                    "generation": r["generation"],
                    "prediction": r["prediction"],
                    "scores": json.loads(r["scores"]),
                }
                for r in rows
            ],
        }

    def compare_arms(self, run_id: str, metric: str) -> list[Row]:
        """Arms side by side for one metric: one row per generation, one column per arm
        (mean over seeds; None where the arm has not reached that generation)."""
        rows = self.metrics(run_id, name=metric)
        if not rows:
            with read_transaction(self.engine) as conn:
                known = sorted(
                    set(
                        conn.execute(
                            sa.select(schema.metrics.c.name).where(
                                schema.metrics.c.run_id == run_id
                            )
                        ).scalars()
                    )
                )
            raise StoreError(f"run {run_id!r} has no metric {metric!r}; its metrics are {known}")
        with read_transaction(self.engine) as conn:
            arms = list(_arm_order(conn, run_id))
        values: dict[tuple[int, str], list[float]] = {}
        for r in rows:
            if r["value"] is not None:
                values.setdefault((r["generation"], r["arm"]), []).append(r["value"])
        gens = sorted({r["generation"] for r in rows})
        return [
            {
                "generation": g,
                **{a: fmean(values[(g, a)]) if (g, a) in values else None for a in arms},
            }
            for g in gens
        ]

    def refinery(self, run_id: str) -> list[Row]:
        """Refinery statistics per generation: attempts, passed, and rejections by reason."""
        ref, rej = schema.refinery, schema.refinery_rejections
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id)
            rows = [
                dict(r)
                for r in conn.execute(sa.select(ref).where(ref.c.run_id == run_id)).mappings()
            ]
            reasons = conn.execute(sa.select(rej).where(rej.c.run_id == run_id)).mappings().all()
        by_gen: dict[tuple[str, int, int], dict[str, int]] = {}
        for r in reasons:
            by_gen.setdefault((r["arm"], r["seed"], r["generation"]), {})[r["reason"]] = r["count"]
        for row in rows:
            del row["run_id"]
            row["rejected"] = dict(
                sorted(by_gen.get((row["arm"], row["seed"], row["generation"]), {}).items())
            )
        return sorted(rows, key=lambda r: (order[r["arm"]], r["seed"], r["generation"]))

    def data_files(self, run_id: str) -> list[Row]:
        """The index of each generation's data files: path, kind, sha256, bytes, rows."""
        t = schema.data_files
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id)
            rows = [
                dict(r) for r in conn.execute(sa.select(t).where(t.c.run_id == run_id)).mappings()
            ]
        for row in rows:
            del row["run_id"]
        return sorted(rows, key=lambda r: (order[r["arm"]], r["seed"], r["generation"], r["path"]))

    def predictions(self, run_id: str, arm: str, seed: int, generation: int) -> list[Row]:
        """One generation's per-example rows in file order: example_id, input, reference,
        prediction and scores (a dict of metric -> value)."""
        p = schema.predictions
        q = sa.select(
            p.c.example_id, p.c.input, p.c.reference, p.c.prediction, p.c.scores
        ).where(p.c.run_id == run_id, p.c.arm == arm, p.c.seed == seed, p.c.generation == generation)
        with read_transaction(self.engine) as conn:
            _check_run(conn, run_id, arm)
            rows = [dict(r) for r in conn.execute(q.order_by(p.c.position)).mappings()]
        for row in rows:
            row["scores"] = json.loads(row["scores"])
        return rows

    def questions(self, run_id: str) -> list[Row]:
        """The run's test examples once each (example_id, input, reference) in test-set order,
        from its first recorded generation: every generation scores the same test set."""
        g, p = schema.generations, schema.predictions
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id)
            keys = conn.execute(
                sa.select(g.c.arm, g.c.seed, g.c.generation).where(g.c.run_id == run_id)
            ).all()
            if not keys:
                return []
            arm, seed, generation = min(keys, key=lambda k: (k[2], order[k[0]], k[1]))
            q = (
                sa.select(p.c.example_id, p.c.input, p.c.reference)
                .where(p.c.run_id == run_id, p.c.arm == arm, p.c.seed == seed)
                .where(p.c.generation == generation)
                .order_by(p.c.position)
            )
            return [dict(r) for r in conn.execute(q).mappings()]

    def documents(self, run_id: str, arm: str | None = None) -> list[Row]:
        """Each generation's metrics.json as recorded (arm, seed, generation, finished,
        document); document is None for generations recorded before migration m003."""
        g = schema.generations
        q = sa.select(g.c.arm, g.c.seed, g.c.generation, g.c.finished, g.c.metrics_json)
        q = q.where(g.c.run_id == run_id)
        if arm is not None:
            q = q.where(g.c.arm == arm)
        with read_transaction(self.engine) as conn:
            order = _check_run(conn, run_id, arm)
            rows = [dict(r) for r in conn.execute(q).mappings()]
        for row in rows:
            text = row.pop("metrics_json")
            row["document"] = None if text is None else _document(text, run_id, row)
        return sorted(rows, key=lambda r: (order[r["arm"]], r["seed"], r["generation"]))

    def records(self, run_id: str, arm: str, seed: int, generation: int, kind: str) -> list[Any]:
        """The records (`collapselab.records.Record`) of one generation's indexed data file of
        `kind` (train, synthetic or rejected), read from the run directory it was recorded
        from; raises naming the file when it is not indexed, not there, or has changed."""

        with read_transaction(self.engine) as conn:
            _check_run(conn, run_id, arm)
            path = indexed_path(conn, run_id, arm, seed, generation, kind)
        return read_records(path)

    def synthetic_scores(self, run_id: str, arm: str, seed: int, generation: int) -> dict[str, dict[str, float]]:
        """Per-record scores of the synthetic data one generation wrote (record id -> metric
        -> value, e.g. `synthetic_perplexity` under the generation-0 model), from its indexed
        synthetic_scores.parquet; raises like `records`."""
        with read_transaction(self.engine) as conn:
            _check_run(conn, run_id, arm)
            path = indexed_path(conn, run_id, arm, seed, generation, "synthetic_scores")
        table = read_parquet(path, columns=["record_id", "scores"], error=StoreError).to_pydict()
        return {i: json.loads(s) for i, s in zip(table["record_id"], table["scores"], strict=True)}

    def data_version(self) -> tuple[Any, ...]:
        """A fingerprint of the database that changes whenever a run, a run status or a
        generation is recorded, redone or removed: a cache key for readers that poll."""
        r, g = schema.runs, schema.generations
        with read_transaction(self.engine) as conn:
            runs = conn.execute(sa.select(sa.func.count(), sa.func.max(r.c.status_at))).one()
            gens = conn.execute(sa.select(sa.func.count(), sa.func.max(g.c.finished))).one()
        return (*runs, *gens)


def resolve_run_id(conn: Connection, run: str | Path) -> str:
    """`run` as a recorded run id: itself, or the run_id in `<run>/manifest.json`."""
    if (Path(run) / "manifest.json").is_file():
        run = read_manifest_run_id(Path(run))
    _check_run(conn, str(run))
    return str(run)


def _document(text: str, run_id: str, row: Row) -> dict[str, Any]:
    """A recorded metrics.json checked against the one model of it (metrics_file.py)."""
    from pydantic import ValidationError

    try:
        return GenerationMetrics.model_validate(json.loads(text)).model_dump()
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "top level"
        raise StoreError(
            f"run {run_id!r}, arm {row['arm']!r}, seed {row['seed']}, generation {row['generation']}: "
            f"recorded metrics.json key {key!r}: {first['msg']}"
        ) from None


def _same_generation(t: sa.Table, g: sa.Table) -> list[Any]:
    return [t.c[k] == g.c[k] for k in schema.GENERATION_KEY]


def _arm_order(conn: Connection, run_id: str) -> dict[str, int]:
    """Arm name -> position in the run's config, in that order."""
    a = schema.arms
    rows = conn.execute(sa.select(a.c.arm, a.c.position).where(a.c.run_id == run_id)).all()
    return {arm: pos for arm, pos in sorted(rows, key=lambda r: r[1])}


def _check_run(conn: Connection, run_id: str, arm: str | None = None) -> dict[str, int]:
    """The run's arm order; raises naming the known runs (or arms) when it is unknown."""
    order = _arm_order(conn, run_id)
    if not order:
        known = sorted(conn.execute(sa.select(schema.runs.c.run_id)).scalars())
        raise StoreError(
            f"unknown run {run_id!r}; known runs: {known or 'none (the database is empty)'}"
        )
    if arm is not None and arm not in order:
        raise StoreError(f"run {run_id!r} has no arm {arm!r}; its arms are {list(order)}")
    return order

"""The current schema, as the queries and writes see it (after every migration).

The migrations build this schema step by step; a test checks that a migrated database
matches these tables column for column. Every table below `generations` is keyed by
the generation it belongs to: (run_id, arm, seed, generation).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

GENERATION_KEY: tuple[str, ...] = ("run_id", "arm", "seed", "generation")


def _key() -> list[sa.Column]:
    return [
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("seed", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    ]


runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(200), primary_key=True),
    sa.Column("experiment", sa.String(200), nullable=False),
    sa.Column("task", sa.String(32)),
    sa.Column("created", sa.String(64)),
    sa.Column("config_hash", sa.String(128)),
    sa.Column("git_sha", sa.String(80)),
    sa.Column("config_yaml", sa.Text, nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),
    # m004: NULL for runs recorded before it, until the engine records them again
    sa.Column("status", sa.String(16)),  # running, done, failed, interrupted (Ctrl-C, SIGTERM)
    sa.Column("status_at", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("generations_planned", sa.Integer),  # G
    sa.Column("run_dir", sa.Text),  # absolute; where data_files paths are relative to
)

RUN_STATUSES: tuple[str, ...] = ("running", "done", "failed", "interrupted")

arms = sa.Table(
    "arms",
    metadata,
    sa.Column("run_id", sa.String(200), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("arm", sa.String(200), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("config", sa.Text, nullable=False),
)

generations = sa.Table(
    "generations",
    metadata,
    *_key(),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("finished", sa.String(64)),
    sa.Column("train_s", sa.Float),
    sa.Column("generate_s", sa.Float),
    sa.Column("evaluate_s", sa.Float),
    sa.Column("train_losses", sa.Text, nullable=False),
    sa.Column("train_steps", sa.Integer),
    sa.Column("train_tokens", sa.BigInteger),
    sa.Column("train_seconds", sa.Float),
    sa.Column("train_records", sa.Integer),
    sa.Column("synthetic_records", sa.Integer),
    sa.Column("metrics_json", sa.Text),  # m003: metrics.json verbatim; NULL if recorded before
    sa.ForeignKeyConstraint(["run_id", "arm"], ["arms.run_id", "arms.arm"]),
)


def _child(name: str, *columns: sa.Column, parent: str = "generations") -> sa.Table:
    fk = sa.ForeignKeyConstraint(list(GENERATION_KEY), [f"{parent}.{c}" for c in GENERATION_KEY])
    return sa.Table(name, metadata, *_key(), *columns, fk)


metrics = _child(
    "metrics",
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("value", sa.Float),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("higher_is_better", sa.Boolean, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
)

predictions = _child(
    "predictions",
    sa.Column("example_id", sa.String(200), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("input", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, nullable=False),
    sa.Column("prediction", sa.Text, nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
)

refinery = _child(
    "refinery",
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("passed", sa.Integer, nullable=False),
)

refinery_rejections = _child(
    "refinery_rejections",
    sa.Column("reason", sa.String(200), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    parent="refinery",
)

data_files = _child(
    "data_files",
    sa.Column("path", sa.String(500), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("rows", sa.Integer),
)

# Tables holding one generation's rows, children before parents: delete in this order,
# insert in reverse.
GENERATION_TABLES: tuple[sa.Table, ...] = (
    predictions,
    metrics,
    refinery_rejections,
    refinery,
    data_files,
    generations,
)

"""The first schema: runs, arms, generations, metrics and per-example predictions.

Frozen: these Table objects describe the schema as it was at version 1, not as it is now
(that is `collapselab.store.schema`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def _generation_key() -> list[sa.Column]:
    return [
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("seed", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    ]


def _generation_fk() -> sa.ForeignKeyConstraint:
    cols = ["run_id", "arm", "seed", "generation"]
    return sa.ForeignKeyConstraint(cols, [f"generations.{c}" for c in cols])


def upgrade(conn: Connection) -> None:
    md = sa.MetaData()
    sa.Table(
        "runs",
        md,
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("experiment", sa.String(200), nullable=False),
        sa.Column("task", sa.String(32)),
        sa.Column("created", sa.String(64)),
        sa.Column("config_hash", sa.String(128)),
        sa.Column("git_sha", sa.String(80)),
        sa.Column("config_yaml", sa.Text, nullable=False),  # verbatim resolved config
        sa.Column("manifest", sa.Text, nullable=False),  # verbatim manifest.json
    )
    sa.Table(
        "arms",
        md,
        sa.Column("run_id", sa.String(200), sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),  # order in the config
        sa.Column("config", sa.Text, nullable=False),  # JSON of the arm's config block
    )
    sa.Table(
        "generations",
        md,
        *_generation_key(),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("finished", sa.String(64)),
        sa.Column("train_s", sa.Float),
        sa.Column("generate_s", sa.Float),
        sa.Column("evaluate_s", sa.Float),
        sa.Column("train_losses", sa.Text, nullable=False),  # JSON list of floats
        sa.Column("train_steps", sa.Integer),
        sa.Column("train_tokens", sa.BigInteger),
        sa.Column("train_seconds", sa.Float),
        sa.Column("train_records", sa.Integer),
        sa.Column("synthetic_records", sa.Integer),
        sa.ForeignKeyConstraint(["run_id", "arm"], ["arms.run_id", "arms.arm"]),
    )
    sa.Table(
        "metrics",
        md,
        *_generation_key(),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("value", sa.Float),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("higher_is_better", sa.Boolean, nullable=False),
        sa.Column("details", sa.Text, nullable=False),  # JSON object
        _generation_fk(),
    )
    sa.Table(
        "predictions",
        md,
        *_generation_key(),
        sa.Column("example_id", sa.String(200), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),  # row order in predictions.parquet
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("prediction", sa.Text, nullable=False),
        sa.Column("scores", sa.Text, nullable=False),  # JSON object: metric -> float
        _generation_fk(),
    )
    md.create_all(conn)
    sa.Index(
        "ix_predictions_example",
        md.tables["predictions"].c.run_id,
        md.tables["predictions"].c.example_id,
    ).create(conn)

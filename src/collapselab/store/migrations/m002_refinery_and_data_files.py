"""Refinery statistics per generation, and an index of each generation's data files.

Generations recorded before this migration have neither until they are recorded again
(`collapselab import RUN_DIR` rebuilds them from the run directory).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_KEY = ["run_id", "arm", "seed", "generation"]


def _key() -> list[sa.Column]:
    return [
        sa.Column("run_id", sa.String(200), primary_key=True),
        sa.Column("arm", sa.String(200), primary_key=True),
        sa.Column("seed", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer, primary_key=True, autoincrement=False),
    ]


def upgrade(conn: Connection) -> None:
    md = sa.MetaData()
    # Reflect the referenced table so the foreign keys resolve inside this MetaData.
    sa.Table("generations", md, autoload_with=conn)
    fk = sa.ForeignKeyConstraint(_KEY, [f"generations.{c}" for c in _KEY])
    sa.Table(
        "refinery",
        md,
        *_key(),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        fk,
    )
    sa.Table(
        "refinery_rejections",
        md,
        *_key(),
        sa.Column("reason", sa.String(200), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(_KEY, [f"refinery.{c}" for c in _KEY]),
    )
    sa.Table(
        "data_files",
        md,
        *_key(),
        sa.Column("path", sa.String(500), primary_key=True),  # relative to the run directory
        sa.Column(
            "kind", sa.String(32), nullable=False
        ),  # train, synthetic, rejected, predictions, metrics
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer),  # records in a Parquet file; None for JSON
        sa.ForeignKeyConstraint(_KEY, [f"generations.{c}" for c in _KEY]),
    )
    for name in ("refinery", "refinery_rejections", "data_files"):
        md.tables[name].create(conn)

"""The run-directory files the database indexes (`data_files`): where one is, and that it
is still the file that was recorded, before a reader opens it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collapselab.errors import StoreError
from collapselab.store import schema


def indexed_path(conn: Connection, run_id: str, arm: str, seed: int, generation: int, kind: str) -> Path:
    """The file of `kind` (train, synthetic, rejected, synthetic_scores...) one generation
    recorded; raises naming it when it is not indexed, not there, or has changed."""
    r, t = schema.runs, schema.data_files
    where = f"run {run_id!r}, arm {arm!r}, seed {seed}, generation {generation}"
    run_dir = conn.execute(sa.select(r.c.run_dir).where(r.c.run_id == run_id)).scalar_one()
    row = conn.execute(
        sa.select(t.c.path, t.c.bytes).where(
            t.c.run_id == run_id, t.c.arm == arm, t.c.seed == seed,
            t.c.generation == generation, t.c.kind == kind,
        )
    ).first()
    if row is None:
        raise StoreError(f"{where}: no {kind} data file is indexed")
    if run_dir is None:
        raise StoreError(
            f"run {run_id!r} was recorded before the database kept run directories; "
            "`collapselab import RUN_DIR` records it again"
        )
    path = Path(run_dir) / row.path
    if not path.is_file():
        raise StoreError(f"{path}: the {kind} data of {where} is not there (run directory moved?)")
    if path.stat().st_size != row.bytes:
        raise StoreError(f"{path}: changed since it was recorded ({row.bytes} bytes then)")
    return path

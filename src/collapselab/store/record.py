"""Writes: the engine records a run when it starts and each generation once it is DONE.

Each call is one transaction. Recording a generation again replaces every row of the
earlier attempt, so a redone step never leaves stale metrics or predictions behind, and
a reader sees either the old generation or the new one, never a mix.

The run directory is the source of truth; the database is its index. A database that does
not answer (`DatabaseDown`: PostgreSQL restarting, a SQLite file locked by a long read) is
tried again with a growing pause, for at most `$COLLAPSELAB_DB_RETRY_S` seconds (default
300) in all; then the write fails with `DatabaseDown` (exit 3), and the next invocation
records whatever is missing from the run directory (`import_run_dir`). Every write replaces
what it writes, so a write retried after its commit was lost never doubles a row.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from collapselab.errors import DatabaseDown
from collapselab.store import schema
from collapselab.store.db import StoreError, connect, write_transaction
from collapselab.store.folder_rows import (
    done_generations,
    read_generation,
    read_manifest_run_id,
    read_run,
)

P = ParamSpec("P")
R = TypeVar("R")

RETRY_ENV = "COLLAPSELAB_DB_RETRY_S"
DEFAULT_RETRY_S = 300.0  # a PostgreSQL restart or a failover takes seconds to a minute or two
FIRST_PAUSE_S, LONGEST_PAUSE_S = 0.5, 30.0


def retry_budget() -> float:
    """Seconds a write keeps trying a database that does not answer (`$COLLAPSELAB_DB_RETRY_S`)."""
    raw = os.environ.get(RETRY_ENV)
    if raw is None:
        return DEFAULT_RETRY_S
    try:
        budget = float(raw)
    except ValueError:
        budget = -1.0
    if not budget >= 0:  # also refuses nan
        raise StoreError(f"${RETRY_ENV}={raw!r}: expected a number of seconds >= 0")
    return budget


_ANSWERED: set[str | None] = set()  # database URLs that took a write in this process


def _retried(write: Callable[P, R]) -> Callable[P, R]:
    """`write`, tried again while the database is down, pausing 0.5, 1, 2, ... 30 s between
    tries, until `retry_budget` seconds of pauses are spent; each pause is said on stderr.

    Only a database that has answered this process before is waited for: one that never did
    is a mistyped URL or a server not started, and is reported at once (exit 3), before the
    command has produced anything to lose."""

    @functools.wraps(write)
    def tried(*args: P.args, **kwargs: P.kwargs) -> R:
        db_url = args[0] if args else kwargs.get("db_url")
        budget, waited, pause = retry_budget(), 0.0, FIRST_PAUSE_S
        while True:
            try:
                done = write(*args, **kwargs)
                _ANSWERED.add(db_url)  # type: ignore[arg-type]
                return done
            except DatabaseDown as e:
                if db_url not in _ANSWERED:
                    raise
                if waited + pause > budget:
                    raise DatabaseDown(f"{e}; still down after {waited:.0f} s of retries (${RETRY_ENV}={budget:g})") from None
                print(f"warning: {e}; trying again in {pause:g} s", file=sys.stderr, flush=True)
                time.sleep(pause)
                waited += pause
                pause = min(2 * pause, LONGEST_PAUSE_S)

    return tried


@_retried
def record_run(db_url: str | None, run_dir: Path) -> None:
    """Record (or update) a run and its arms from `config.yaml` and `manifest.json`.

    Idempotent: recording the same run again updates its row and adds arms that are new.

    Args:
        db_url: SQLAlchemy URL; None means `$COLLAPSELAB_DB`, else `sqlite:///runs/collapselab.db`.
        run_dir: `runs/<experiment>/<run_id>/`.
    """
    engine = connect(db_url)
    try:
        with write_transaction(engine) as conn:
            write_run(conn, *read_run(Path(run_dir)))
    finally:
        engine.dispose()


@_retried
def record_run_status(db_url: str | None, run_dir: Path, status: str, error: str | None = None) -> None:
    """Record that the run in `run_dir` is `running`, `done`, `failed` (with its error line)
    or `interrupted` (stopped by Ctrl-C or SIGTERM).

    The engine calls this when a run starts, finishes, fails and is stopped; the run must have been
    recorded with `record_run`. `error` is kept for a failed run only, cut to its first line.
    """
    if status not in schema.RUN_STATUSES:
        raise ValueError(f"run status must be one of {schema.RUN_STATUSES}, got {status!r}")
    if (error is not None) != (status == "failed"):
        raise ValueError(f"an error line goes with status 'failed' only (status {status!r}, error {error!r})")
    run_id = read_manifest_run_id(Path(run_dir))
    now = dt.datetime.now(dt.UTC).isoformat()  # microseconds: readers key caches on it
    line = None if error is None else (error.strip().splitlines() or [""])[0][:2000]
    runs = schema.runs
    engine = connect(db_url)
    try:
        with write_transaction(engine) as conn:
            done = conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(status=status, status_at=now, error=line)
            )
            if done.rowcount != 1:
                raise StoreError(
                    f"run {run_id!r} ({run_dir}) is not recorded; call record_run before record_run_status"
                )
    finally:
        engine.dispose()


@_retried
def record_generation(
    db_url: str | None, run_dir: Path, arm: str, seed: int, generation: int
) -> None:
    """Record one finished generation in one transaction, replacing an earlier attempt.

    Reads `<run_dir>/<arm>/seed-<seed>/gen-<generation>/` (metrics.json, predictions.parquet,
    the data files and DONE). The run must have been recorded with `record_run`.
    """
    run_dir = Path(run_dir)
    engine = connect(db_url)
    try:
        # Read and check every file before the transaction opens, so the write lock is
        # held only for the inserts.
        run_row, _ = read_run(run_dir)
        rows = read_generation(run_dir, run_row["run_id"], arm, seed, generation)
        with write_transaction(engine) as conn:
            _require_arm(conn, run_row["run_id"], arm, run_dir)
            write_generation(conn, rows)
    finally:
        engine.dispose()


@_retried
def forget_generations(db_url: str | None, run_dir: Path, generations: list[tuple[str, int, int]]) -> None:
    """Delete the rows of (arm, seed, generation)s that were moved aside to be redone, in
    one transaction, so the database never shows results the run directory no longer has."""
    run_id = read_run(Path(run_dir))[0]["run_id"]
    engine = connect(db_url)
    try:
        with write_transaction(engine) as conn:
            for arm, seed, generation in generations:
                delete_generation(conn, run_id, arm, seed, generation)
    finally:
        engine.dispose()


def import_run_dir(db_url: str | None, run_dir: Path) -> list[tuple[str, int, int]]:
    """Rebuild a run's rows from its directory: the run, then every generation with DONE.

    Returns the (arm, seed, generation) recorded.
    """
    run_dir = Path(run_dir)
    record_run(db_url, run_dir)
    found = done_generations(run_dir)
    for arm, seed, generation in found:
        record_generation(db_url, run_dir, arm, seed, generation)
    return found


def write_run(conn: Connection, run_row: dict[str, Any], arm_rows: list[dict[str, Any]]) -> None:
    """Upsert the run row and its arms (arms no longer in the config are kept: they may
    have generations)."""
    run_id = run_row["run_id"]
    runs = schema.runs
    if conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first() is None:
        conn.execute(runs.insert().values(**run_row))
    else:
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(**run_row))
    arms = schema.arms
    known = set(conn.execute(sa.select(arms.c.arm).where(arms.c.run_id == run_id)).scalars())
    for row in arm_rows:
        if row["arm"] in known:
            where = (arms.c.run_id == run_id) & (arms.c.arm == row["arm"])
            conn.execute(
                arms.update().where(where).values(position=row["position"], config=row["config"])
            )
        else:
            conn.execute(arms.insert().values(**row))


def write_generation(conn: Connection, rows: dict[str, list[dict[str, Any]]]) -> None:
    """Replace one generation's rows: delete every table's rows for its key, insert anew."""
    (gen,) = rows["generations"]
    delete_generation(conn, gen["run_id"], gen["arm"], gen["seed"], gen["generation"])
    for table in reversed(schema.GENERATION_TABLES):
        if rows[table.name]:
            conn.execute(table.insert(), rows[table.name])


def delete_generation(conn: Connection, run_id: str, arm: str, seed: int, generation: int) -> None:
    for table in schema.GENERATION_TABLES:
        c = table.c
        conn.execute(
            table.delete().where(
                (c.run_id == run_id)
                & (c.arm == arm)
                & (c.seed == seed)
                & (c.generation == generation)
            )
        )


def delete_run(conn: Connection, run_id: str) -> None:
    """Remove every row of a run (import replaces a run wholesale)."""
    for table in (*schema.GENERATION_TABLES, schema.arms, schema.runs):
        conn.execute(table.delete().where(table.c.run_id == run_id))


def _require_arm(conn: Connection, run_id: str, arm: str, run_dir: Path) -> None:
    arms = schema.arms
    known = list(conn.execute(sa.select(arms.c.arm).where(arms.c.run_id == run_id)).scalars())
    if not known:
        raise StoreError(
            f"run {run_id!r} ({run_dir}) is not recorded; call record_run before record_generation"
        )
    if arm not in known:
        raise StoreError(
            f"run {run_id!r}: arm {arm!r} is not in its config; arms are {sorted(known)}"
        )

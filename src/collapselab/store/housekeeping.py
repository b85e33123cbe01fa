"""Run housekeeping: every run found in the database or on disk, deleting one whole, pruning leftovers.

A run lives in two places: its directory (`<output_dir>/<experiment>/<run_id>/`) and its
rows in the results database. Deleting a run removes both, rows first (a database that
is down leaves the run whole), then the directory: renamed to a hidden `.deleting-<id>`
at once (no reader finds a half-deleted run), then removed. Both happen while this process
holds the run's lock (`rundir.folders.lock_run`), so a run that a live process is writing
is refused, naming that process.

Pruning removes what no reader uses:
- generation folders moved aside by `run --restart-from` (`<run>/.superseded/`);
- what a killed writer left half-written: hidden temporary files and folders beside the
  files they were to replace, a generation copy never renamed into place, a deletion
  that was cut off;
- runs that failed before finishing any generation (status `failed`, no DONE generation):
  nothing in them can be read or continued into a result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from collapselab.errors import RunError, RunLocked
from collapselab.rundir.folders import lock_run
from collapselab.rundir.generation import finished
from collapselab.store import schema
from collapselab.store.db import (
    DatabaseUnreachable,
    connect,
    read_transaction,
    require_database,
    write_transaction,
)
from collapselab.store.folder_rows import load_json
from collapselab.store.record import delete_run

SUPERSEDED = ".superseded"
DELETING = ".deleting-"
# What a killed writer leaves: `.<name>.<16 hex>.tmp` files (records.atomic_write_*),
# `.<name>.<16 hex>` folders (cache.new_folder_beside), `.gen-<g>.copy` (engine._copy_generation).
_LEFTOVER = re.compile(r"^\..+\.[0-9a-f]{16}(\.tmp)?$|^\.gen-\d+\.copy$")


@dataclass(slots=True)
class RunPlace:
    """One run as found: its directory (None when only the database has it) and its rows
    (`recorded` False when only the directory exists)."""

    run_id: str
    experiment: str | None
    run_dir: Path | None
    recorded: bool
    status: str | None = None  # as the database last recorded it
    generations_done: int = 0  # DONE generation folders on disk, else recorded generations
    generations_expected: int | None = None
    size_bytes: int | None = None  # on disk, each hard-linked file once; None: no directory
    created: str = ""  # the manifest's time stamp (ISO)

    def describe(self) -> str:
        where = str(self.run_dir) if self.run_dir is not None else "no directory"
        return f"run {self.run_id} ({self.experiment}, {where})"


@dataclass(slots=True)
class Pruned:
    """What `prune` removed (or would remove, when not applied)."""

    paths: list[Path] = field(default_factory=list)  # leftovers inside run directories
    runs: list[RunPlace] = field(default_factory=list)  # whole runs that failed with nothing finished
    skipped: list[str] = field(default_factory=list)  # runs a live process holds: left alone, one line each
    size_bytes: int = 0


def find_runs(db_url: str | None, roots: Iterable[Path] = ()) -> list[RunPlace]:
    """Every run recorded in the database or lying under `roots` (folders of experiments,
    like `runs/`) or under the output folders of recorded runs, oldest first. A SQLite
    database that does not exist holds no runs (and is not created)."""
    rows, counts, arms = _recorded(db_url)
    places: dict[str, RunPlace] = {}
    search = {Path(r).resolve() for r in roots}
    for row in rows:
        run_dir = Path(row["run_dir"]) if row["run_dir"] else None
        seeds = len(_json_object(row["manifest"]).get("seeds") or [0])
        planned = row["generations_planned"]
        places[row["run_id"]] = RunPlace(
            row["run_id"], row["experiment"], run_dir if run_dir is not None and (run_dir / "manifest.json").is_file() else None,
            True, row["status"], counts.get(row["run_id"], 0),
            None if planned is None else planned * arms.get(row["run_id"], 0) * seeds, created=row["created"] or "",
        )
        if run_dir is not None:
            search.add(run_dir.parent.parent)
    for root in sorted(search):
        for manifest in sorted(root.glob("*/*/manifest.json")):
            run_dir = manifest.parent.resolve()
            data = load_json(manifest)
            data = data if isinstance(data, dict) else {}
            run_id = str(data.get("run_id", run_dir.name))
            place = places.get(run_id)
            if place is None:
                places[run_id] = RunPlace(run_id, data.get("experiment"), run_dir, False, created=str(data.get("created", "")))
            elif place.run_dir is None:
                place.run_dir = run_dir
    for place in places.values():
        if place.run_dir is not None:
            place.generations_done = len(finished(place.run_dir))
            place.size_bytes = folder_size(place.run_dir)
    return sorted(places.values(), key=lambda p: (p.created, p.run_id))


def _recorded(db_url: str | None) -> tuple[list[dict], dict[str, int], dict[str, int]]:
    """The database's run rows, generations recorded per run and arms per run."""
    try:
        require_database(db_url)
    except DatabaseUnreachable:
        return [], {}, {}
    engine = connect(db_url)
    g, a = schema.generations, schema.arms
    try:
        with read_transaction(engine) as conn:
            rows = [dict(m) for m in conn.execute(sa.select(schema.runs)).mappings()]
            counts = dict(conn.execute(sa.select(g.c.run_id, sa.func.count()).group_by(g.c.run_id)).all())
            arms = dict(conn.execute(sa.select(a.c.run_id, sa.func.count()).group_by(a.c.run_id)).all())
    finally:
        engine.dispose()
    return rows, counts, arms


def find_run(db_url: str | None, run: str, roots: Iterable[Path] = ()) -> RunPlace:
    """The run named by a run directory or a run id; raises naming the known runs."""
    places = find_runs(db_url, [*roots, *([Path(run).resolve().parent.parent] if Path(run, "manifest.json").is_file() else [])])
    if Path(run, "manifest.json").is_file():
        wanted = Path(run).resolve()
        for p in places:
            if p.run_dir == wanted:
                return p
    for p in places:
        if p.run_id == run:
            return p
    known = ", ".join(p.run_id for p in places) or "none"
    raise RunError(f"run {run!r}: neither a run directory (no manifest.json) nor a run id found in the database or on disk; runs: {known}")


def delete(db_url: str | None, place: RunPlace) -> None:
    """Remove the run's database rows, then its directory, holding its lock.

    Raises:
        RunLocked: a live process is writing the run (exit code 2, naming it).
    """
    lock = lock_run(place.run_dir) if place.run_dir is not None else None
    try:
        if place.recorded:
            engine = connect(db_url)
            try:
                with write_transaction(engine) as conn:
                    delete_run(conn, place.run_id)
            finally:
                engine.dispose()
        if place.run_dir is not None:
            doomed = place.run_dir.with_name(f"{DELETING}{place.run_dir.name}")
            os.replace(place.run_dir, doomed)  # gone for every reader at once
            shutil.rmtree(doomed)
    finally:
        if lock is not None:
            lock.release()  # its file went with the directory; this closes it


def prune(db_url: str | None, roots: Iterable[Path] = (), *, apply: bool) -> Pruned:
    """Find (and with `apply`, remove) the leftovers of every run (see the module's list).
    A run that a live process holds is left alone and named in `Pruned.skipped`."""
    out = Pruned()
    places = find_runs(db_url, roots)
    by_run: dict[Path, list[Path]] = {}
    for place in places:
        if place.run_dir is None:
            continue
        if place.status == "failed" and place.generations_done == 0:
            out.runs.append(place)
            out.size_bytes += place.size_bytes or 0
        else:
            by_run[place.run_dir] = leftovers(place.run_dir)
    orphans = sorted({d for p in places if p.run_dir is not None for d in p.run_dir.parent.glob(f"{DELETING}*")})
    out.paths = [*orphans, *(p for paths in by_run.values() for p in paths)]
    out.size_bytes += sum(folder_size(p) if p.is_dir() else p.stat().st_size for p in out.paths)
    if not apply:
        return out
    for place in out.runs:
        try:
            delete(db_url, place)
        except RunLocked as e:
            out.skipped.append(str(e))
    for path in orphans:
        _remove(path)
    for run_dir, paths in by_run.items():
        if not paths:
            continue
        try:
            lock = lock_run(run_dir)
        except RunLocked as e:
            out.skipped.append(str(e))
            continue
        try:
            for path in paths:
                _remove(path)
        finally:
            lock.release()
    return out


def leftovers(run_dir: Path) -> list[Path]:
    """A run's superseded generations and what killed writers left half-written in it."""
    found = [run_dir / SUPERSEDED] if (run_dir / SUPERSEDED).is_dir() else []
    for dirpath, dirs, files in os.walk(run_dir):
        if Path(dirpath) == run_dir and SUPERSEDED in dirs:
            dirs.remove(SUPERSEDED)
        for name in [*dirs, *files]:
            if _LEFTOVER.match(name):
                found.append(Path(dirpath, name))
        dirs[:] = [d for d in dirs if not _LEFTOVER.match(d)]
    return found


def folder_size(folder: Path) -> int:
    """Bytes of the files under `folder`, each hard-linked file once (generation 0 of a
    run's arms is one set of files linked into each arm)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:  # removed while we walked
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _json_object(text: str | None) -> dict:
    data = json.loads(text) if text else {}
    return data if isinstance(data, dict) else {}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)

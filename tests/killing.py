"""A kill schedule: SIGKILL a command at seeded random moments, run it again after each kill,
and compare everything it produced with an uninterrupted run of the same command.

The tests run it small (a few kills per command, tests/unit/reliability); the benchmark runs
it large (`benchmarks/kill_schedule.py`, 20 kills per command). What it compares:

- every file under the output folder, by relative path: JSON and YAML as parsed values,
  Parquet and JSON Lines row by row, anything else (model weights) byte for byte; the
  values that say when or how long (`VOLATILE_KEYS`) and the output folder's own path are
  left out, since they differ between any two runs;
- the rows the command recorded in the results database, table by table (volatile columns
  left out), and the rows whose primary key appears twice;
- the temporary files and folders an interrupted writer left behind
  (`collapselab.rundir.folders.temporaries`), which must be none once the schedule ends.

A command is started in a session of its own, so a kill reaches every process it started
(data loader workers, a local Ray), as a power cut or the OOM killer's kill of a group would.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Keys whose values say when something happened or how long it took, where it ran, or what
# command line started it: never equal between two runs, killed or not.
VOLATILE_KEYS = frozenset({
    "created", "finished", "started", "status_at", "seconds", "timings", "hardware", "command",
    "git_sha", "python", "packages", "copied_from", "error", "manifest", "elapsed_s", "updated", "pid", "host",
    "run_id",  # a run's folder name: compared as the folder (two learner runs are named by their start)
})
# Files that are a process's own business, not results: the run lock, logs.
IGNORED_NAMES = frozenset({".lock", "timings.json"})
IGNORED_SUFFIXES = (".log", ".lock", ".db", ".db-wal", ".db-shm")
IGNORED_FOLDERS = frozenset({".superseded"})


@dataclass
class Command:
    """One command line to run (again and again) and where its output lands."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path  # stdout and stderr of every attempt, appended

    def start(self) -> subprocess.Popen:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("a") as log:
            log.write(f"\n=== {' '.join(self.argv)} at {time.strftime('%H:%M:%S')}\n")
            log.flush()
            return subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)


def collapselab_command(args: list[str], *, cwd: Path, log: Path, env: dict[str, str] | None = None) -> Command:
    """`python -m collapselab.cli <args>` with this process's environment (plus `env`)."""
    return Command([sys.executable, "-m", "collapselab.cli", *args], {**os.environ, **(env or {})}, cwd, log)


@dataclass
class Schedule:
    """What a kill schedule did."""

    moments: list[float]  # seconds after each attempt's start at which it was to be killed
    kills: int = 0  # kills delivered to a live command
    finished_early: int = 0  # attempts that ended (exit 0) before their moment came
    failures: list[str] = field(default_factory=list)  # attempts that exited non-zero on their own
    final_returncode: int | None = None
    seconds: float = 0.0

    @property
    def survived(self) -> int:
        """Kills after which the command still ended as an uninterrupted run does."""
        return self.kills if self.final_returncode == 0 and not self.failures else 0


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the command and every process of its session."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run_schedule(command: Command, *, kills: int, seed: int, low: float, high: float, timeout_s: float,
                 after_kill: Callable[[int], None] | None = None,
                 kill: Callable[[subprocess.Popen], bool] | None = None) -> Schedule:
    """Start `command`, SIGKILL it at a seeded random moment in [low, high) seconds after its
    start, start it again, and so on until `kills` kills have landed; then let the last
    attempt finish.

    An attempt that finishes before its moment has done the rest of the work (a resumed run
    is shorter than a whole one): its length becomes the new `high`, so later moments land
    inside the work that is left, and it counts in `finished_early`, not as a kill. At most
    3 x `kills` attempts are made.

    Args:
        command: What to run.
        kills: Kills to deliver to a live command.
        seed: Seeds the moments.
        low, high: Where moments are drawn (seconds after an attempt starts): `high` is
            about the uninterrupted command's length, `low` skips the start-up.
        timeout_s: Longest wait for the final, unkilled attempt.
        after_kill: Called with the kill's number after each kill (e.g. to kill what the
            command left running elsewhere).
        kill: Instead of killing the command's process group: kill something else of it
            (a sweep's trial) and wait for the command to end; returns whether a kill
            landed. The command may then exit non-zero: that attempt is the kill's.
    """
    rng = random.Random(seed)
    schedule = Schedule([])
    t0 = time.monotonic()
    for attempt in range(3 * kills):
        if schedule.kills >= kills:
            break
        moment = round(rng.uniform(low, max(high, low + 0.1)), 2)
        schedule.moments.append(moment)
        proc = command.start()
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < moment:
            time.sleep(0.02)
        if proc.poll() is None and (kill or _kill_group)(proc):
            schedule.kills += 1
            if after_kill is not None:
                after_kill(schedule.kills)
        elif proc.returncode == 0:
            schedule.finished_early += 1
            high = time.monotonic() - started
        else:
            schedule.failures.append(f"attempt {attempt + 1}: exit {proc.returncode} on its own (see {command.log})")
    proc = command.start()
    try:
        schedule.final_returncode = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        schedule.failures.append(f"final attempt: still running after {timeout_s} s (see {command.log})")
    if schedule.final_returncode not in (0, None):
        schedule.failures.append(f"final attempt: exit {schedule.final_returncode} (see {command.log})")
    schedule.seconds = time.monotonic() - t0
    return schedule


def _kill_group(proc: subprocess.Popen) -> bool:
    kill_group(proc)
    return True


def run_once(command: Command, *, timeout_s: float) -> float:
    """Run `command` to the end, uninterrupted; returns its wall time. Raises if it fails."""
    t0 = time.monotonic()
    proc = command.start()
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        raise AssertionError(f"{command.argv}: still running after {timeout_s} s; see {command.log}") from None
    if code != 0:
        raise AssertionError(f"{command.argv}: exit {code}; see {command.log}:\n{command.log.read_text()[-3000:]}")
    return time.monotonic() - t0


# ---------------------------------------------------------------- what it produced


@dataclass
class Comparison:
    """An interrupted run's output against an uninterrupted one's."""

    files: int = 0  # files compared
    values: int = 0  # values compared inside them (JSON leaves, Parquet cells, DB cells)
    rows: int = 0  # database rows compared
    differences: list[str] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)  # left behind under the killed output
    duplicate_rows: int = 0

    def line(self) -> str:
        return (f"{self.files} files, {self.values} values, {self.rows} rows compared; {len(self.differences)} differences, "
                f"{len(self.temporaries)} leftover temporaries, {self.duplicate_rows} duplicate rows")

    def clean(self) -> bool:
        """No difference, no temporary left, no row twice."""
        return not self.differences and not self.temporaries and self.duplicate_rows == 0

    def assert_equal(self) -> None:
        assert not self.differences, "\n".join(self.differences[:20])
        assert not self.temporaries, self.temporaries
        assert self.duplicate_rows == 0
        assert self.files > 0 and self.values > 0  # a comparison of nothing proves nothing


def compare_outputs(clean: Path, killed: Path, *, into: Comparison | None = None,
                    ignore: Callable[[str], bool] = lambda rel: False) -> Comparison:
    """Compare every file under `clean` with its namesake under `killed` (`ignore(relpath)`:
    leave a file out), and list the temporaries left under `killed`."""
    from collapselab.rundir.folders import temporaries

    out = into or Comparison()
    a, b = _files(clean, ignore), _files(killed, ignore)
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            out.differences.append(f"{rel}: missing after the kills")
            continue
        if rel not in a:
            out.differences.append(f"{rel}: only after the kills")
            continue
        out.files += 1
        va, vb = _content(clean / rel, clean), _content(killed / rel, killed)
        out.values += _leaves(va)
        if va != vb:
            out.differences.append(f"{rel}: {_first_difference(va, vb)}")
    out.temporaries += [str(p.relative_to(killed)) for p in temporaries(killed)]
    return out


def _files(root: Path, ignore: Callable[[str], bool]) -> dict[str, Path]:
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in IGNORED_FOLDERS and not _temporary(d)]
        for name in files:
            if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES) or _temporary(name):
                continue
            rel = str((Path(folder) / name).relative_to(root))
            if not ignore(rel):
                found[rel] = Path(folder) / name
    return found


def _temporary(name: str) -> bool:
    from collapselab.rundir.folders import TEMPORARY_NAME

    return bool(TEMPORARY_NAME.match(name))


def _content(path: Path, root: Path) -> Any:
    """A file as comparable values, with `root`'s path replaced by `<root>`."""
    suffix = path.suffix
    if suffix in (".json", ".yaml", ".yml", ".jsonl") or path.name in ("DONE", "latest"):
        text = path.read_text().replace(str(root.resolve()), "<root>").replace(str(root), "<root>")
        if suffix == ".jsonl":
            return [_stable(json.loads(line)) for line in text.splitlines() if line.strip()]
        if suffix == ".json" or path.name == "DONE":
            return _stable(json.loads(text))
        if suffix in (".yaml", ".yml"):
            import yaml

            return _stable(yaml.safe_load(text))
        return text
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
        return [_stable(_rooted(r, root)) for r in rows]
    return hashlib.sha256(path.read_bytes()).hexdigest()  # weights, tokenizers: byte for byte


def _rooted(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace(str(root.resolve()), "<root>").replace(str(root), "<root>")
    if isinstance(value, dict):
        return {k: _rooted(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_rooted(v, root) for v in value]
    return value


def _volatile(key: Any) -> bool:
    return key in VOLATILE_KEYS or (isinstance(key, str) and key.endswith(("_s", "seconds")))  # train_s, train_seconds


def _stable(value: Any) -> Any:
    """`value` without its volatile keys; JSON held in a string is parsed and cleaned too."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not _volatile(k)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    if isinstance(value, str) and value.strip()[:1] in ("{", "[") and value.strip()[-1:] in ("}", "]"):
        try:
            return _stable(json.loads(value))
        except ValueError:
            return value
    return value


def _leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(_leaves(v) for v in value)
    return 1


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if type(a) is not type(b):
        return f"{where or 'value'}: {_short(a)} != {_short(b)}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k, "<absent>") != b.get(k, "<absent>"):
                return _first_difference(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{where}.{k}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{where or 'rows'}: {len(a)} != {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or 'value'}: {_short(a)} != {_short(b)}"


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 120 else text[:117] + "..."


# ---------------------------------------------------------------- the database


def database_rows(url: str, run_ids: Iterable[str] | None = None, *, root: Path | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row of every store table (of `run_ids` only, when given), volatile columns left out,
    `root` (the output folder) spelled `<root>`, sorted; the run id itself is replaced by its
    position in `run_ids` so two runs compare."""
    import sqlalchemy as sa

    from collapselab.store import schema

    ids = list(run_ids) if run_ids is not None else None
    engine = sa.create_engine(url)
    out: dict[str, list[dict[str, Any]]] = {}
    try:
        with engine.connect() as conn:
            for table in schema.metadata.sorted_tables:
                if "run_id" not in table.c:
                    continue
                query = sa.select(table)
                if ids is not None:
                    query = query.where(table.c.run_id.in_(ids))
                rows = []
                for r in conn.execute(query).mappings():
                    row = {k: v for k, v in r.items() if not _volatile(k) and k != "config_yaml"}
                    if table.name == "data_files" and row["kind"] == "metrics":
                        del row["sha256"], row["bytes"]  # metrics.json holds the steps' seconds
                    row = _stable(_rooted(row, root) if root is not None else row)
                    row["run_id"] = ids.index(r["run_id"]) if ids is not None else r["run_id"]  # after _stable, which drops it
                    rows.append(row)
                out[table.name] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    finally:
        engine.dispose()
    return out


def compare_rows(clean: dict[str, list[dict[str, Any]]], killed: dict[str, list[dict[str, Any]]], *,
                 keys: dict[str, list[str]], into: Comparison) -> Comparison:
    """Compare two `database_rows` snapshots table by table; count rows whose key (`keys[table]`)
    appears more than once in `killed`."""
    for table in sorted(set(clean) | set(killed)):
        a, b = clean.get(table, []), killed.get(table, [])
        into.rows += len(a)
        into.values += sum(len(r) for r in a)
        seen = Counter(tuple(json.dumps(r.get(k), default=str) for k in keys[table]) for r in b)
        into.duplicate_rows += sum(n - 1 for n in seen.values() if n > 1)
        if len(a) != len(b):
            into.differences.append(f"table {table}: {len(a)} rows uninterrupted, {len(b)} after the kills")
        elif a != b:
            i = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            into.differences.append(f"table {table}, row {i}: {_first_difference(a[i], b[i])}")
    return into


def primary_keys() -> dict[str, list[str]]:
    """Each store table's primary key columns (what a duplicate row would repeat)."""
    from collapselab.store import schema

    return {t.name: [c.name for c in t.primary_key.columns] for t in schema.metadata.sorted_tables}

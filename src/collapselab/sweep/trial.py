"""One trial, as one Ray task runs it: an ordinary, resumable engine run in its own run directory.

The run directory carries the sweep in its manifest (`manifest["sweep"]`: the sweep's name
and this trial's grid point), which the results database stores with the run: that is how
`collapselab results --sweep` finds a sweep's trials. The trial's state (running, done,
failed with the error) goes to `trials/<run_id>.json` beside the sweep, its console output
to `trials/<run_id>.log`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collapselab.config import config_from_dict
from collapselab.lab.events import GenerationFinished, Message
from collapselab.records import atomic_write_json
from collapselab.report import up_to_date_report
from collapselab.rundir.folders import open_run

# How long a trial waits for an earlier attempt's process to let go of the trial (a driver
# killed with SIGKILL leaves its Ray workers alive for a few seconds).
LOCK_WAIT_S = 180.0


def run_trial(
    config: dict[str, Any], run_id: str, sweep: dict[str, Any], files: dict[str, str],
    cwd: str, env: dict[str, str], db_url: str | None, cpus: float,
) -> dict[str, Any]:
    """Run (or continue) one trial; returns its run directory and seconds.

    Args:
        config: the trial's resolved config (`ExperimentConfig.model_dump(mode="json")`).
        run_id: the trial's deterministic run id.
        sweep: `{"name": ..., "point": {...}}`, stored in the run's manifest.
        files: `{"state": ..., "log": ...}` paths of the trial's state and console files.
        cwd, env: the driver's working directory and `COLLAPSELAB_*`/`HF_*` variables, so a
            trial on any node resolves relative paths and caches as the driver does.
        db_url: the results database.
        cpus: CPUs reserved for the trial; its torch threads.
    """
    os.chdir(cwd)
    os.environ.update(env)
    state = Path(files["state"])
    state.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with _exclusive(state.with_suffix(".lock")):
        started = {"status": "running", "host": socket.gethostname(), "pid": os.getpid(),
                   "started": datetime.now(UTC).isoformat()}
        atomic_write_json(state, started)
        try:
            with open(files["log"], "a", encoding="utf-8") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                print(f"--- {started['started']} trial {run_id} on {started['host']} (pid {started['pid']})", flush=True)
                try:
                    run_dir = _run(config, run_id, sweep, db_url, cpus)
                except BaseException:
                    traceback.print_exc()
                    raise
        except BaseException as e:
            atomic_write_json(state, {**started, "status": "failed", "error": one_line(e),
                                      "finished": datetime.now(UTC).isoformat(), "seconds": time.perf_counter() - t0})
            raise
        seconds = time.perf_counter() - t0
        atomic_write_json(state, {**started, "status": "done", "finished": datetime.now(UTC).isoformat(), "seconds": seconds})
    return {"run_id": run_id, "run_dir": str(run_dir), "seconds": seconds}


def _run(config: dict[str, Any], run_id: str, sweep: dict[str, Any], db_url: str | None, cpus: float) -> Path:
    import torch

    from collapselab.engine import run_experiment

    torch.set_num_threads(max(1, int(cpus)))
    cfg = config_from_dict(config, source=f"trial {run_id}")
    open_trial_run(cfg, run_id, sweep)
    return run_experiment(cfg, run_id=run_id, db_url=db_url, listeners=[_print], write_report=up_to_date_report)


def _print(event) -> None:
    """A trial's progress on its worker's stdout (Ray forwards it to the driver's log)."""

    if isinstance(event, Message):
        print(event.text, flush=True)
    elif isinstance(event, GenerationFinished):
        print(f"finished {event.arm} seed {event.seed} generation {event.generation}", flush=True)


def open_trial_run(cfg, run_id: str, sweep: dict[str, Any]) -> Path:
    """The trial's run directory (created, or the existing one with the same config), its
    manifest carrying the sweep."""

    run_dir = open_run(cfg, run_id=run_id)
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    if manifest.get("sweep") != sweep:
        atomic_write_json(path, {**manifest, "sweep": sweep})
    return run_dir


def one_line(e: BaseException) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


@contextlib.contextmanager
def _exclusive(path: Path):
    """Hold an exclusive lock on `path`: one process at a time runs a trial. The kernel
    drops the lock when its holder dies, so a killed attempt never blocks the next."""
    with open(path, "a") as f:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path}: another process has held this trial for {LOCK_WAIT_S:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)

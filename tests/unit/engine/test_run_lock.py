"""One writer per run directory: a second command on a run being written stops at once
(exit 2, naming the holder), a lock left by a dead process is taken over, and the lock
file is gone once the run ends."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from tiny import tiny_config, write_config

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import RunLocked
from collapselab.lab.events import Message
from collapselab.rundir.folders import RUN_LOCK, lock_run, open_run

HOLD = ("import pathlib, sys\nfrom collapselab.rundir.folders import lock_run\n"
        "lock = lock_run(pathlib.Path(sys.argv[1]))\nprint('locked', flush=True)\nsys.stdin.read()\nlock.release()\n")


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_run_of_a_run_being_written_stops_at_once_naming_the_holder(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=1)
    path = write_config(cfg, tmp_path / "c.yaml")
    run_dir = open_run(config_from_dict(cfg), run_id="r1")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run([sys.executable, "-m", "collapselab.cli", "run", str(path), "--run-id", "r1"],
                                capture_output=True, text=True, timeout=300)
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"pid {holder.pid} on {socket.gethostname()}" in second.stderr and "is writing this run" in second.stderr
        assert "Traceback" not in second.stderr
        assert sorted(p.name for p in run_dir.iterdir()) == sorted([RUN_LOCK, "config.yaml", "manifest.json"])  # nothing written
    finally:
        holder.communicate(timeout=60)  # closing its stdin releases the lock
    assert holder.returncode == 0 and not (run_dir / RUN_LOCK).exists()
    lock_run(run_dir).release()  # free again


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(tiny_lm_data, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=1))
    run_dir = open_run(cfg, run_id="r1")
    dead = _dead_pid()
    stale = {"host": socket.gethostname(), "pid": dead, "started": "2026-01-01T00:00:00+00:00", "command": ["collapselab", "run"]}
    (run_dir / RUN_LOCK).write_text(json.dumps(stale))  # what a SIGKILLed run leaves behind
    messages = []
    assert run_experiment(cfg, run_id="r1", listeners=[lambda e: messages.append(e.text) if isinstance(e, Message) else None]) == run_dir
    assert any(f"took over {run_dir / RUN_LOCK}" in m and f"pid {dead}" in m for m in messages), messages
    assert (run_dir / "replace" / "seed-0" / "gen-0" / "DONE").exists()
    assert not (run_dir / RUN_LOCK).exists()  # released at the end: no file of a finished run


def test_a_live_holder_or_another_hosts_lock_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lock = lock_run(run_dir)
    assert lock.taken_over is None
    with pytest.raises(RunLocked, match=rf"pid {os.getpid()} on .* is writing this run") as refused:
        lock_run(run_dir)  # two writers in one process are refused too
    assert refused.value.exit_code == 2
    assert json.loads((run_dir / RUN_LOCK).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (run_dir / RUN_LOCK).exists()
    # Another host's process: this host cannot tell whether it still runs.
    (run_dir / RUN_LOCK).write_text(json.dumps({"host": "elsewhere-node-7", "pid": 4242, "started": "2026-01-01T00:00:00+00:00"}))
    with pytest.raises(RunLocked, match=rf"pid 4242 on elsewhere-node-7 .*if it does not, delete {run_dir / RUN_LOCK}"):
        lock_run(run_dir)

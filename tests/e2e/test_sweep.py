"""A real 2 x 2 sweep (ratio x seed) through the CLI: first on an existing Ray cluster (by
address), whose driver is killed with SIGKILL halfway; then the same command again on a local
Ray started on demand, which finishes the rest without redoing any finished step. One trial
fails, and the other three finish."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from tiny_lab import kill_all, ray_processes, tiny_config, wait_gone, write_config, write_corpus

from collapselab.config import load_config
from collapselab.store import Store
from collapselab.sweep.plan import plan_sweep, trial_progress

pytestmark = pytest.mark.e2e

GRID = ["--grid", "arms.0.ratio=0.25,0.75", "--grid", "experiment.seeds=[0],[1]"]
STEPS = ("train.parquet", "model/config.json", "synthetic.parquet", "DONE")  # a step's output exists = done
TOKEN = secrets.token_hex(32)  # Ray's token auth, given in the environment: nothing written to ~/.ray


def _env(ray_tmp: str) -> dict[str, str]:
    return {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, "RAY_USAGE_STATS_ENABLED": "0"}


def _sweep(config: Path, cwd: Path, ray_tmp: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "collapselab.cli", "sweep", str(config), *GRID, *extra],
                            cwd=cwd, env=_env(ray_tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _start_cluster(ray_tmp: str) -> str:
    """`ray start --head` with one CPU (trials one at a time: one worker to start, the test's
    budget); returns its address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([str(Path(sys.executable).parent / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                    "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
                   env=_env(ray_tmp), check=True, capture_output=True, timeout=180)
    return f"127.0.0.1:{port}"


def _steps(folder: Path) -> dict[str, int]:
    """Every finished step's output file -> its modification time (ns)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for step in STEPS for p in folder.glob(f"runs/tiny/*/*/seed-*/gen-*/{step}")}


def _wait_unlocked(locks: list[Path], timeout_s: float) -> None:
    """Until no process holds a trial (a killed driver's workers are stopped by Ray)."""
    deadline = time.monotonic() + timeout_s
    for lock in locks:
        with open(lock, "a") as f:
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    assert time.monotonic() < deadline, f"{lock} still held"
                    time.sleep(0.2)


def test_sweep_reports_a_failed_trial_and_resumes_after_sigkill_of_its_driver(tmp_path):
    data = write_corpus(tmp_path / "data")
    cfg = tiny_config(data, tmp_path / "runs", sweep={"num_cpus": 2, "resources": {"cpus": 1}})
    config = write_config(cfg, tmp_path / "tiny.yaml")
    plan = plan_sweep(load_config(config), GRID[1::2])
    assert len(plan.trials) == 4 and len({t.run_id for t in plan.trials}) == 4
    # The trial (ratio 0.75, seed 1) finds a corrupt training file of generation 0: it fails
    # mid-run, after its run is recorded, and must not stop the other three.
    broken = next(t for t in plan.trials if t.point == {"arms.0.ratio": 0.75, "experiment.seeds": [1]})
    (broken.run_dir / "ratio/seed-1/gen-0").mkdir(parents=True)
    (broken.run_dir / "ratio/seed-1/gen-0/train.parquet").write_bytes(b"not a parquet file")
    others = [t for t in plan.trials if t is not broken]

    cluster_tmp, local_tmp = tempfile.mkdtemp(prefix="clr"), tempfile.mkdtemp(prefix="clr")
    try:
        # 1. on an existing cluster; the driver is killed once a trial is finished and the
        #    next one is half done
        address = _start_cluster(cluster_tmp)
        driver = _sweep(config, tmp_path, cluster_tmp, "--address", address)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            progress = [trial_progress(t)[0] for t in others]
            if 2 in progress and any(d < 2 and (t.run_dir / "ratio").exists() for d, t in zip(progress, others, strict=True)):
                break
            time.sleep(0.05)
        assert driver.poll() is None, driver.communicate()[0]
        kill_all([driver.pid])
        driver.wait()
        _wait_unlocked(sorted(plan.folder.glob("trials/*.lock")), 30)
        before = _steps(plan.folder)
        finished = [t for t in others if trial_progress(t)[0] == 2]
        half_done = [t for t in others if t not in finished and (t.run_dir / "ratio").exists()]
        assert finished and half_done, before

        # 2. the same command again, on a local Ray started on demand with two CPUs (two
        #    trials at a time): the rest runs, what was finished is not redone
        rerun = _sweep(config, tmp_path, local_tmp)
        out = rerun.communicate(timeout=300)[0]
        assert rerun.returncode == 1, out  # one trial failed
        assert f"{len(finished)} finished before" in out, out
        after = _steps(plan.folder)
        assert {k: after.get(k) for k in before} == before  # no finished step of any trial redone
        for t in plan.trials:
            assert (trial_progress(t)[0] == 2) == (t is not broken), t.point
        state = json.loads(plan.state_file(broken).read_text())
        assert state["status"] == "failed" and "RecordError" in state["error"] and "train.parquet" in state["error"]
        assert f"trial {broken.run_id}" in out and "failed: RecordError" in out
        assert "3 of 4 trials done, 1 failed" in out
        # the Ray it started is shut down with it
        assert wait_gone(local_tmp, 15) == []
    finally:
        kill_all(ray_processes(cluster_tmp) + ray_processes(local_tmp))

    # 3. four run directories, four runs in the database, the comparison table
    assert sorted(p.parent.name for p in plan.folder.glob("runs/tiny/*/manifest.json")) == sorted(t.run_id for t in plan.trials)
    with Store() as store:
        recorded = {r["run_id"] for r in store.list_runs()}
        assert recorded == {t.run_id for t in plan.trials}
        assert {store.run(r)["manifest"]["sweep"]["name"] for r in recorded} == {plan.name}
    table = subprocess.run([sys.executable, "-m", "collapselab.cli", "results", "--sweep", plan.name, "-f", "json"],
                           capture_output=True, text=True, check=True).stdout
    rows = json.loads(table)
    assert len(rows) == 4 and all({"arms.0.ratio", "experiment.seeds", "run_id", "perplexity"} <= r.keys() for r in rows)
    done = [r for r in rows if r["status"] == "done"]
    assert len(done) == 3 and all(r["perplexity"] > 1 for r in done)
    assert sorted((r["arms.0.ratio"], r["experiment.seeds"]) for r in done) == [(0.25, "[0]"), (0.25, "[1]"), (0.75, "[0]")]
    assert [r["status"] for r in rows if r["run_id"] == broken.run_id] == ["0/2 generations"]
    report = (plan.folder / "report" / "report.md").read_text()
    assert "perplexity (test, current model) against the swept key" in report and (plan.folder / "report/figures/sweep.png").stat().st_size > 10_000

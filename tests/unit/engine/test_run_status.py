"""The engine records its run's status in the results database: running, done, failed,
interrupted (Ctrl-C, or SIGTERM through the CLI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from tiny import tiny_config, write_config

from collapselab import engine
from collapselab.config import config_from_dict
from collapselab.store import Store


def test_a_failing_run_is_recorded_as_failed_with_its_error(tiny_lm_data, tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=1))
    seen = []

    def fail(lab, arm, seed):
        with Store(db) as store:  # while the loop runs, the run is running
            seen.append(store.list_runs()[0]["status"])
        raise RuntimeError("disk full\nsecond line")

    monkeypatch.setattr(engine, "run_arm", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        engine.run_experiment(cfg, db_url=db)
    with Store(db) as store:
        (run,) = store.list_runs()
    assert seen == ["running"]
    assert (run["status"], run["error"]) == ("failed", "RuntimeError: disk full")
    assert (run["generations"], run["generations_expected"]) == (0, 2)


@pytest.mark.parametrize(("stop", "code", "name"), [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_run_stopped_by_sigterm_or_ctrl_c_is_recorded_interrupted(stop, code, name, tiny_lm_data, tmp_path):
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=3)
    cfg["arms"] = cfg["arms"][:1]
    proc = subprocess.Popen([sys.executable, "-m", "collapselab.cli", "run", str(write_config(cfg, tmp_path / "tiny.yaml")), "--db", db],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    deadline = time.time() + 240
    while not list((tmp_path / "runs").glob("tiny/*/replace/seed-0/gen-0/DONE")):  # stop it mid-run
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the run ended or stalled before it could be stopped: {proc.communicate()[1][-2000:]}")
        time.sleep(0.05)
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert err.splitlines()[-1] == f"error: interrupted ({name})" and "Traceback" not in err
    with Store(db) as store:
        (run,) = store.list_runs()
    assert (run["status"], run["error"]) == ("interrupted", None)
    assert run["generations"] < 3  # stopped before its end

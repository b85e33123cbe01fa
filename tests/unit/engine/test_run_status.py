"""The engine records its run's status in the results database: running, done, failed."""

from __future__ import annotations

import pytest
from tiny import tiny_config

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

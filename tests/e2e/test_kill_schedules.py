"""The kill schedule, shrunken, on the two long commands that start other processes: a
`sweep` on a local Ray (its driver killed, then one of its trials killed), and `serve`
following a learner that is killed while it publishes checkpoints (the server keeps
answering from the last complete checkpoint and never loads a half-written one). After
each, everything produced equals an uninterrupted run's (tests/killing.py)."""

from __future__ import annotations

import pytest
from kill_targets import kill_a_trial, learn_target, serve_beside_learner, stop_ray, sweep_target
from killing import run_once, run_schedule

pytestmark = pytest.mark.e2e


def test_sweep_survives_kills_of_its_driver_and_of_a_trial(tmp_path):
    target = sweep_target(tmp_path)
    try:
        clean_s = run_once(target.clean, timeout_s=600)
        stop_ray(target.clean)
        drivers = run_schedule(target.killed, kills=2, seed=4, low=2.0, high=clean_s, timeout_s=600,
                               after_kill=lambda _: stop_ray(target.killed))
        assert drivers.kills == 2 and not drivers.failures, (drivers, target.killed.log.read_text()[-3000:])
        stop_ray(target.killed)
        # the same sweep again from nothing, a trial killed this time
        import shutil

        shutil.rmtree(target.killed_dir / "runs")
        (tmp_path / "sweep" / "killed.db").unlink()
        trials = run_schedule(target.killed, kills=1, seed=5, low=0.0, high=0.1, timeout_s=600,
                              kill=kill_a_trial(target.killed_dir), after_kill=lambda _: stop_ray(target.killed))
        assert trials.kills == 1 and not trials.failures, (trials, target.killed.log.read_text()[-3000:])
        result = target.compare()
        result.assert_equal()
    finally:
        for command in (target.clean, target.killed):
            stop_ray(command)


def test_server_keeps_answering_from_complete_checkpoints_while_its_learner_is_killed(tmp_path):
    steps = 4
    target = learn_target(tmp_path, steps=steps)
    clean_s = run_once(target.clean, timeout_s=600)
    schedule, report = serve_beside_learner(
        target, lambda: run_schedule(target.killed, kills=2, seed=6, low=1.0, high=clean_s, timeout_s=600), last_step=steps)
    assert schedule.kills == 2 and not schedule.failures, schedule
    assert report.answers > 0 and not report.problems(steps), report.problems(steps)
    target.compare().assert_equal()

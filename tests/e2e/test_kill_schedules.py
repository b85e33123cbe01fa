"""The kill schedule, shrunken: each long command is SIGKILLed (its whole process group) at
seeded random moments, twice or so, and run again after each kill; everything it produced
(files, metrics, records, model weights, database rows) must equal what an uninterrupted
run of the same command produced, with no temporary file left and no row twice.
tests/killing.py is the harness, tests/kill_targets.py the commands;
benchmarks/kill_schedule.py runs 20 kills each.

Covered: `run` with its results in PostgreSQL; the three-arm refinery run; `learn` (every
document of the stream trained on once, in order); `sweep` on a local Ray (its driver
killed, then one of its trials); `serve` following a learner that is killed while it
publishes checkpoints (the server keeps answering from the last complete checkpoint,
never an older one after a newer, never a checkpoint that fails to load)."""

from __future__ import annotations

import shutil

import pytest
from kill_targets import (
    Target,
    kill_a_trial,
    learn_target,
    refinery_target,
    run_target,
    serve_beside_learner,
    stop_ray,
    sweep_target,
)
from killing import run_once, run_schedule
from unit.store.store_backends import pg_schema_url

pytestmark = pytest.mark.e2e

START_UP_S = 1.0  # kills land from here on: in the imports, the data loading, and the work


def _schedule(target: Target, seed: int, kills: int = 2) -> None:
    clean_s = run_once(target.clean, timeout_s=900)
    schedule = run_schedule(target.killed, kills=kills, seed=seed, low=START_UP_S, high=clean_s, timeout_s=900)
    assert schedule.kills == kills and not schedule.failures, (schedule, target.killed.log.read_text()[-3000:])
    target.compare().assert_equal()


def test_run_with_results_in_postgresql_survives_kills(tmp_path):
    with pg_schema_url() as clean, pg_schema_url() as killed:
        _schedule(run_target(tmp_path, urls=(clean, killed)), seed=1)


def test_three_arm_refinery_run_survives_kills(tmp_path):
    _schedule(refinery_target(tmp_path), seed=2)


def test_learner_survives_kills_without_repeating_or_skipping_a_document(tmp_path):
    _schedule(learn_target(tmp_path, steps=3), seed=3)


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
            shutil.rmtree(command.env["RAY_TMPDIR"], ignore_errors=True)  # Ray's logs and sockets


def test_server_keeps_answering_from_complete_checkpoints_while_its_learner_is_killed(tmp_path):
    steps = 4
    target = learn_target(tmp_path, steps=steps)
    clean_s = run_once(target.clean, timeout_s=600)
    schedule, report = serve_beside_learner(
        target, lambda: run_schedule(target.killed, kills=2, seed=6, low=1.0, high=clean_s, timeout_s=600), last_step=steps)
    assert schedule.kills == 2 and not schedule.failures, schedule
    assert report.answers > 0 and not report.problems(steps), report.problems(steps)
    target.compare().assert_equal()

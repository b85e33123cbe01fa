"""The kill schedule, shrunken: each long command is SIGKILLed twice at seeded random moments
and run again after each kill, and everything it produced (files, metrics, records, model
weights, database rows) must equal what an uninterrupted run of the same command produced,
with no temporary file left and no row twice. tests/killing.py is the harness,
tests/kill_targets.py the commands; benchmarks/kill_schedule.py runs 20 kills each.

Covered here: `run` with its results in PostgreSQL, the three-arm refinery run, and `learn`
(every document of the stream trained on once, in order). `sweep` and `serve` beside a
learner are in tests/e2e/test_kill_schedules.py (they start Ray and a server)."""

from __future__ import annotations

from kill_targets import Target, learn_target, refinery_target, run_target
from killing import run_once, run_schedule
from unit.store.store_backends import pg_schema_url

KILLS = 2
START_UP_S = 1.0  # kills land from here on: in the imports, the data loading, and the work


def _schedule(target: Target, seed: int) -> None:
    clean_s = run_once(target.clean, timeout_s=900)
    schedule = run_schedule(target.killed, kills=KILLS, seed=seed, low=START_UP_S, high=clean_s, timeout_s=900)
    assert schedule.kills == KILLS and not schedule.failures, (schedule, target.killed.log.read_text()[-3000:])
    result = target.compare()
    result.assert_equal()


def test_run_with_results_in_postgresql_survives_kills(tmp_path):
    with pg_schema_url() as clean, pg_schema_url() as killed:
        _schedule(run_target(tmp_path, urls=(clean, killed)), seed=1)


def test_three_arm_refinery_run_survives_kills(tmp_path):
    _schedule(refinery_target(tmp_path), seed=2)


def test_learner_survives_kills_without_repeating_or_skipping_a_document(tmp_path):
    _schedule(learn_target(tmp_path, steps=3), seed=3)

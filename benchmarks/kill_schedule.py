"""The kill schedule at laptop size: every long command SIGKILLed 20 times at seeded random
moments, run again after each kill, and compared with an uninterrupted run.

    nice -n 10 python benchmarks/kill_schedule.py                 # every command, 20 kills each
    python benchmarks/kill_schedule.py --commands run,learn --kills 6 --scale 1

Commands (tests/kill_targets.py builds them; tests/killing.py kills and compares):
  run       `collapselab run`, tiny lm, 2 arms x 3 generations, results in PostgreSQL
            ($COLLAPSELAB_TEST_PG_URL, from `.ci/postgres.sh`)
  refinery  the three-arm refinery run (human / contaminated / synthetic from human), tiny QA
  learn     `collapselab learn` on a document stream (also: no document repeated or skipped)
  sweep     `collapselab sweep` over 2 trials on a local Ray: half the kills to the driver,
            half to a running trial
  serve     `collapselab serve --learner` while its learner is killed: every answer a 200,
            never an older checkpoint after a newer one, never a checkpoint that fails to load

Kills come in rounds of `--per-round` on a fresh killed twin (a resumed run is shorter than a
whole one: a round's later kills land in what is left of the work); each round is compared
with the same uninterrupted run. Prints one line per round and a Markdown table row per
command: kills survived, files and values compared, differences, leftover temporaries,
duplicate rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

from kill_targets import (  # noqa: E402
    Target,
    kill_a_trial,
    learn_target,
    refinery_target,
    run_target,
    serve_beside_learner,
    stop_ray,
    sweep_target,
)
from killing import Comparison, run_once, run_schedule  # noqa: E402

COMMANDS = ("run", "refinery", "learn", "sweep", "serve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", default=",".join(COMMANDS))
    parser.add_argument("--kills", type=int, default=20, help="kills per command")
    parser.add_argument("--per-round", type=int, default=5, help="kills per fresh killed twin")
    parser.add_argument("--scale", type=int, default=2, help="data and training size (1: the tests' size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temporary folder)")
    args = parser.parse_args()
    from common import machine

    print(machine(), flush=True)
    base = args.out or Path(tempfile.mkdtemp(prefix="kill-schedule-"))
    os.environ.setdefault("COLLAPSELAB_CACHE", str(base / "cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    rows = []
    for name in args.commands.split(","):
        t0 = time.monotonic()
        with ExitStack() as stack:
            total, kills, extra = BENCH[name](base / name, args, stack)
        rows.append(f"| `{name}` | {kills} / {args.kills} | {total.files} | {total.values} | {total.rows} | {len(total.differences)} | "
                    f"{len(total.temporaries)} | {total.duplicate_rows} | {extra} | {time.monotonic() - t0:.0f} |")
        print(rows[-1], flush=True)
    print("\n| command | kills survived | files compared | values compared | rows compared | differences | leftover temporaries | "
          "duplicate rows | also | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    print("\n".join(rows))


def _add(total: Comparison, part: Comparison) -> None:
    total.files += part.files
    total.values += part.values
    total.rows += part.rows
    total.differences += part.differences
    total.temporaries += part.temporaries
    total.duplicate_rows += part.duplicate_rows


def _rounds(target: Target, args, *, kill=None, after_kill=None, low: float = 1.0, kills: int | None = None,
            clean_s: float | None = None) -> tuple[Comparison, int]:
    """Rounds of kills on fresh killed twins until `kills` have landed; survived kills and the sum
    of the comparisons."""
    want = kills if kills is not None else args.kills
    clean_s = clean_s if clean_s is not None else run_once(target.clean, timeout_s=3600)
    total, survived, r = Comparison(), 0, 0
    while survived < want and r < 3 * want:
        if r:
            target.reset_killed()
        schedule = run_schedule(target.killed, kills=min(args.per_round, want - survived), seed=args.seed * 1000 + r,
                                low=low, high=clean_s, timeout_s=3600, kill=kill, after_kill=after_kill)
        part = target.compare()
        _add(total, part)
        survived += schedule.survived if part.clean() else 0
        print(f"  {target.name} round {r + 1}: {schedule.kills} kills at {schedule.moments} s, {schedule.finished_early} finished "
              f"before their moment, failures {schedule.failures}; {part.line()}", flush=True)
        for d in part.differences[:5]:
            print(f"    {d}", flush=True)
        r += 1
    return total, survived


def bench_run(base: Path, args, stack: ExitStack) -> tuple[Comparison, int, str]:
    from unit.store.store_backends import pg_schema_url

    urls = (stack.enter_context(pg_schema_url()), stack.enter_context(pg_schema_url()))
    total, survived = _rounds(run_target(base, urls=urls, generations=3, arms=2, scale=args.scale), args)
    return total, survived, "PostgreSQL"


def bench_refinery(base: Path, args, stack: ExitStack) -> tuple[Comparison, int, str]:
    total, survived = _rounds(refinery_target(base, scale=args.scale), args)
    return total, survived, "3 arms"


def bench_learn(base: Path, args, stack: ExitStack) -> tuple[Comparison, int, str]:
    total, survived = _rounds(learn_target(base, steps=3 * args.scale), args)
    return total, survived, "documents once each, in order"


def bench_sweep(base: Path, args, stack: ExitStack) -> tuple[Comparison, int, str]:
    target = sweep_target(base)
    for command in (target.clean, target.killed):
        stack.callback(shutil.rmtree, command.env["RAY_TMPDIR"], ignore_errors=True)  # Ray's logs and sockets, last
        stack.callback(stop_ray, command)
    clean_s = run_once(target.clean, timeout_s=3600)
    stop_ray(target.clean)
    drivers = args.kills - args.kills // 2
    total, survived = _rounds(target, args, kills=drivers, clean_s=clean_s, low=2.0, after_kill=lambda _: stop_ray(target.killed))
    target.reset_killed()
    stop_ray(target.killed)
    trial_args = argparse.Namespace(**{**vars(args), "per_round": 1})  # each trial kill lets the driver run on to its end
    # the moment only starts the wait for a running trial: drawn in the sweep's first half,
    # so the kill lands before the trials are done
    part, by_trial = _rounds(target, trial_args, kills=args.kills // 2, clean_s=clean_s / 2, low=0.0,
                             kill=kill_a_trial(target.killed_dir), after_kill=lambda _: stop_ray(target.killed))
    _add(total, part)
    return total, survived + by_trial, f"{survived} driver kills, {by_trial} trial kills survived"


def bench_serve(base: Path, args, stack: ExitStack) -> tuple[Comparison, int, str]:
    steps = 3 * args.scale
    target = learn_target(base, steps=steps)
    clean_s = run_once(target.clean, timeout_s=3600)
    total, survived, answers, problems, r = Comparison(), 0, 0, [], 0
    while survived < args.kills and r < 3 * args.kills:
        if r:
            target.reset_killed()
        kills, seed = min(args.per_round, args.kills - survived), args.seed * 1000 + r
        schedule, report = serve_beside_learner(target, lambda k=kills, s=seed: run_schedule(
            target.killed, kills=k, seed=s, low=1.0, high=clean_s, timeout_s=3600), last_step=steps)
        part = target.compare()
        _add(total, part)
        round_problems = report.problems(steps)
        problems += round_problems
        answers += report.answers
        survived += schedule.survived if part.clean() and not round_problems else 0
        print(f"  serve round {r + 1}: {schedule.kills} learner kills, {report.answers} answers from steps "
              f"{sorted(set(report.steps_served))}, problems {round_problems}; {part.line()}", flush=True)
        r += 1
    return total, survived, f"{answers} answers, {len(problems)} refused or stale or failed loads"


BENCH = {"run": bench_run, "refinery": bench_refinery, "learn": bench_learn, "sweep": bench_sweep, "serve": bench_serve}


if __name__ == "__main__":
    main()

"""The sweep driver: start (or join) Ray, submit every unfinished trial as a task, show progress.

Ray is the scheduler: each trial is one task that reserves `sweep.resources` (CPUs, GPUs,
fractions of a GPU), so a laptop runs as many trials at once as its cores allow and a
cluster as many as its nodes do. A trial that raises is reported and the others go on. A
trial whose every generation is DONE is not submitted again; an unfinished one continues
from its first missing step (the engine resumes its run directory). The trials' run
directories, the sweep folder and the working directory must be on storage every node sees
(on one machine they are).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collapselab.errors import ConfigError
from collapselab.records import atomic_write_json
from collapselab.sweep.config import SweepBlock
from collapselab.sweep.plan import SweepPlan, Trial, trial_progress
from collapselab.sweep.trial import one_line, run_trial

# Variables a trial needs from the driver's environment (data, caches, database, offline hub).
FORWARDED_ENV = ("COLLAPSELAB_", "HF_", "TRANSFORMERS_")


@dataclass(slots=True)
class SweepOutcome:
    plan: SweepPlan
    done: list[str] = field(default_factory=list)  # run ids finished by this invocation
    skipped: list[str] = field(default_factory=list)  # finished before it
    failed: dict[str, str] = field(default_factory=dict)  # run id -> one-line error
    seconds: float = 0.0


def run_sweep(plan: SweepPlan, *, address: str | None = None, db_url: str | None = None,
              say: Callable[[str], None] = print, poll_s: float = 2.0) -> SweepOutcome:
    """Run every unfinished trial of `plan` on Ray; returns what finished and what failed.

    Args:
        plan: from `plan_sweep`.
        address: Ray cluster address (overrides `sweep.address`); None with no
            `sweep.address` starts a local Ray (or joins `$RAY_ADDRESS`, as Ray does).
        db_url: results database every trial records into.
        say: where progress lines go.
        poll_s: how often progress is checked.
    """
    t0 = time.perf_counter()
    block = plan.base.sweep or SweepBlock()
    address = address or block.address
    plan.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(plan.folder / "sweep.json", {**plan.describe(), "updated": _now()})
    out = SweepOutcome(plan)
    todo = []
    for trial in plan.trials:
        done, total, _ = trial_progress(trial)
        if done == total:
            _ensure_recorded(db_url, trial, total)
            out.skipped.append(trial.run_id)
        else:
            todo.append(trial)
    say(f"sweep {plan.name}: {len(plan.trials)} trials, {len(out.skipped)} finished before, {len(todo)} to run ({plan.folder})")
    if todo:
        _run_on_ray(plan, todo, block, address, db_url, say, poll_s, out)
    out.seconds = time.perf_counter() - t0
    say(f"sweep {plan.name}: {len(out.done) + len(out.skipped)} of {len(plan.trials)} trials done, "
        f"{len(out.failed)} failed, {out.seconds:.0f} s")
    return out


def _run_on_ray(plan: SweepPlan, todo: list[Trial], block: SweepBlock, address: str | None, db_url: str | None,
                say: Callable[[str], None], poll_s: float, out: SweepOutcome) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a lab machine
    import ray
    from ray.exceptions import RayError, RayTaskError

    res = block.resources
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=block.num_cpus or os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    try:
        _check_resources(ray.cluster_resources(), res, local=not address, say=say)
        env = trial_env(plan.base)
        task = ray.remote(run_trial)
        since = _now()
        pending: dict[Any, Trial] = {}
        for trial in todo:
            sweep = {"name": plan.name, "point": trial.point}
            files = {"state": str(plan.state_file(trial).resolve()), "log": str(plan.log_file(trial).resolve())}
            ref = task.options(num_cpus=res.cpus, num_gpus=res.gpus, name=f"trial {trial.run_id}").remote(
                trial.config.model_dump(mode="json"), trial.run_id, sweep, files, os.getcwd(), env, db_url, res.cpus)
            pending[ref] = trial
        shown = ""
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            for ref in ready:
                trial = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as e:  # the trial raised: its state file says so already
                    out.failed[trial.run_id] = one_line(e.cause)
                except RayError as e:  # its worker or node died: say so in its state file too
                    out.failed[trial.run_id] = one_line(e)
                    atomic_write_json(plan.state_file(trial), {"status": "failed", "error": out.failed[trial.run_id], "finished": _now()})
                else:
                    out.done.append(trial.run_id)
                    say(f"trial {trial.run_id} ({_point(trial)}) done in {result['seconds']:.0f} s")
                    continue
                say(f"trial {trial.run_id} ({_point(trial)}) failed: {out.failed[trial.run_id]} (log: {plan.log_file(trial)})")
            line = progress_line(plan, pending.values(), out, since)
            if line != shown:
                say(line)
                shown = line
    finally:
        ray.shutdown()


def trial_env(cfg) -> dict[str, str]:
    """The driver's variables a trial needs: `COLLAPSELAB_*`, `HF_*`, `TRANSFORMERS_*`, and
    those the config's outlets read their secrets from (Telegram's token and chat id...)."""
    names = set()
    if cfg.hub is not None:
        names.add(cfg.hub.token_env)
    if cfg.notify is not None and cfg.notify.telegram is not None:
        names |= {cfg.notify.telegram.token_env, cfg.notify.telegram.chat_id_env}
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV) or k in names}


def progress_line(plan: SweepPlan, pending, out: SweepOutcome, since: str) -> str:
    """`sweep S: 1 done, 2 running, 0 failed, 1 waiting | <run id> <arm>/seed-<s>/gen-<g> (k/n), ...`"""
    running = []
    for trial in pending:
        state = _read_state(plan.state_file(trial))
        if state.get("status") == "running" and state.get("started", "") >= since:
            done, total, current = trial_progress(trial)
            running.append(f"{trial.run_id} {current} ({done}/{total})")
    waiting = len(list(pending)) - len(running)
    head = (f"sweep {plan.name}: {len(out.done) + len(out.skipped)} done, {len(running)} running, "
            f"{len(out.failed)} failed, {waiting} waiting")
    return head + (" | " + ", ".join(running) if running else "")


def _check_resources(cluster: dict[str, float], res, *, local: bool, say: Callable[[str], None]) -> None:
    """A trial that asks for more than the cluster has would wait forever: on a local Ray that
    is a config error; a remote cluster may still grow (its autoscaler), so it is said."""
    for key, name, want in (("CPU", "cpus", res.cpus), ("GPU", "gpus", res.gpus)):
        have = cluster.get(key, 0.0)
        if want > have:
            message = f"sweep.resources.{name}: each trial asks for {want:g} {key}s, the Ray cluster has {have:g}"
            if local:
                raise ConfigError(message)
            say(message + "; trials wait until the cluster has them")


def _ensure_recorded(db_url: str | None, trial: Trial, total: int) -> None:
    """A finished trial whose rows are missing (its process died between DONE and the
    database write, or the database is new) is recorded from its run directory."""
    from collapselab import store

    try:
        with store.Store(db_url, must_exist=False) as s:
            recorded = len(s.generations(trial.run_id))
    except store.StoreError:
        recorded = 0
    if recorded < total:
        store.import_run_dir(db_url, trial.run_dir)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _point(trial: Trial) -> str:
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in trial.point.items())


def _now() -> str:
    return datetime.now(UTC).isoformat()

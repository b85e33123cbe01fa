"""A sweep's trials side by side: one row per trial x arm x seed at the final generation,
and the main metric against the swept key, averaged over seeds with a 95 % CI.

Trials are found by the sweep in their manifest (`manifest["sweep"]["name"]`), either in the
results database (`collapselab results --sweep`) or under the sweep's folder
(`collapselab report --sweep`); both give the same `TrialResult`s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapselab.config import config_from_dict
from collapselab.errors import CollapselabError
from collapselab.results import finished_generations
from collapselab.rundir.folders import load_run_config, read_manifest
from collapselab.sweep.plan import SEEDS_KEY
from collapselab.tasks import get_task
from collapselab.textio import read_json


class SweepNotFound(CollapselabError, ValueError):
    """No trial of the named sweep is recorded (or on disk); the message says where it looked."""


@dataclass(slots=True)
class TrialResult:
    run_id: str
    point: dict[str, Any]
    task: str
    primary: str  # the task's primary metric (`Task.primary_metric`: lm perplexity, qa refinery.success.metric)
    generations: int  # G of the trial's config
    final: dict[tuple[str, int], dict[str, float | None]] = field(default_factory=dict)  # (arm, seed) -> metrics at g = G-1
    done: int = 0  # generations finished, every arm and seed
    total: int = 0


def from_store(store, name: str) -> list[TrialResult]:
    """The sweep's trials recorded in the results database (`store` is a `Store`)."""
    import yaml

    out = []
    for row in store.list_runs():
        run = store.run(row["run_id"])
        sweep = run["manifest"].get("sweep") or {}
        if sweep.get("name") != name:
            continue
        cfg = config_from_dict(yaml.safe_load(run["config_yaml"]), source=f"run {run['run_id']!r} config")
        e = cfg.experiment
        result = TrialResult(run["run_id"], sweep["point"], e.task, get_task(e.task).primary_metric(cfg), e.generations)
        result.total = len(cfg.arms) * len(e.seeds) * result.generations
        result.done = len(store.generations(run["run_id"]))
        for m in store.metrics(run["run_id"], generation=result.generations - 1):
            result.final.setdefault((m["arm"], m["seed"]), {})[m["name"]] = m["value"]
        out.append(result)
    if not out:
        raise SweepNotFound(f"no run of sweep {name!r} in the results database; run `collapselab sweep` first, or check --db")
    return sorted(out, key=lambda t: t.run_id)


def from_folder(folder: Path) -> list[TrialResult]:
    """The sweep's trials from its folder (`<output_dir>/sweeps/<name>`), read from their run
    directories (finished generations only)."""

    plan_file = folder / "sweep.json"
    if not plan_file.is_file():
        raise SweepNotFound(f"{folder}: not a sweep folder (no sweep.json)")
    name = read_plan(folder)["name"]
    out = []
    for manifest in sorted(folder.glob("runs/*/*/manifest.json")):
        sweep = read_manifest(manifest.parent).get("sweep") or {}
        if sweep.get("name") != name:
            continue
        run_dir = manifest.parent
        cfg = load_run_config(run_dir)
        e = cfg.experiment
        result = TrialResult(run_dir.name, sweep["point"], e.task, get_task(e.task).primary_metric(cfg), e.generations,
                             total=len(cfg.arms) * len(e.seeds) * e.generations)
        for g in finished_generations(run_dir, cfg):
            result.done += 1
            if g.generation == e.generations - 1:
                result.final[(g.arm, g.seed)] = g.metrics
        out.append(result)
    if not out:
        raise SweepNotFound(f"{folder}: no trial run directory of sweep {name!r} yet")
    return out


def read_plan(folder: Path) -> dict[str, Any]:
    """A sweep folder's sweep.json, checked to name its sweep (errors name the file)."""

    path = folder / "sweep.json"
    if not path.is_file():
        raise SweepNotFound(f"{folder}: not a sweep folder (no sweep.json)")
    plan = read_json(path, error=SweepNotFound)
    if not isinstance(plan, dict) or not isinstance(plan.get("name"), str):
        raise SweepNotFound(f"{path}: key 'name' is missing or not a string; the sweep folder is damaged")
    return plan


def grid_keys(trials: list[TrialResult]) -> list[str]:
    return list(dict.fromkeys(k for t in trials for k in t.point))


def comparison_rows(trials: list[TrialResult]) -> list[dict[str, Any]]:
    """One row per trial x arm x seed: the grid point, then the final generation's metrics.
    A trial not finished yet is one row saying how far it got."""
    keys = grid_keys(trials)
    names = sorted({n for t in trials for m in t.final.values() for n in m})
    rows = []
    for t in sorted(trials, key=lambda t: [_order(t.point.get(k)) for k in keys]):
        point = {k: _show(t.point.get(k)) for k in keys}
        status = "done" if t.done == t.total else f"{t.done}/{t.total} generations"
        if not t.final:
            rows.append({**point, "run_id": t.run_id, "status": status, "arm": None, "seed": None, **dict.fromkeys(names)})
        for (arm, seed), metrics in sorted(t.final.items()):
            rows.append({**point, "run_id": t.run_id, "status": status, "arm": arm, "seed": seed,
                         **{n: metrics.get(n) for n in names}})
    return rows


def swept_key(trials: list[TrialResult]) -> str:
    """The key the plot puts on its x axis: the first grid key that is not the seeds."""
    keys = [k for k in grid_keys(trials) if k != SEEDS_KEY]
    if not keys:
        raise SweepNotFound(f"the sweep varies only {SEEDS_KEY}: nothing to plot against")
    return keys[0]


def metric_by_key(trials: list[TrialResult], metric: str, key: str) -> dict[str, dict[Any, list[float]]]:
    """line -> x value -> the final `metric` of every seed at that x. A line is one arm and
    one value of every other grid key except the seeds, e.g. `ratio | model.name=a`."""
    others = [k for k in grid_keys(trials) if k not in (key, SEEDS_KEY)]
    lines: dict[str, dict[Any, list[float]]] = {}
    for t in sorted(trials, key=lambda t: _order(t.point.get(key))):
        for (arm, _seed), metrics in sorted(t.final.items()):
            if metrics.get(metric) is None:
                continue
            label = " | ".join([arm] + [f"{k}={_show(t.point.get(k))}" for k in others])
            lines.setdefault(label, {}).setdefault(_hashable(t.point.get(key)), []).append(metrics[metric])
    return lines


def _order(value: Any) -> tuple[int, Any]:
    """Numbers in numeric order, then everything else by its JSON text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, json.dumps(value, sort_keys=True))


def _hashable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value


def _show(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, list | dict) else value

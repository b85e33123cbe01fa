"""A sweep's plan: the grid, one trial config per grid point, and where everything lives.

The plan is a pure function of the config: the same config and grid give the same sweep
name, the same trials and the same run ids, so running a sweep again finds its trials.

    <output_dir>/sweeps/<sweep>/
      sweep.json                       the plan: grid, trials and their points
      trials/<run_id>.json | .log      each trial's state and its console output
      runs/<experiment>/<run_id>/      each trial's ordinary run directory
      report/                          the sweep comparison (collapselab report --sweep)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from collapselab.checks import check_experiment
from collapselab.config import ConfigError, ExperimentConfig, apply_override, config_from_dict
from collapselab.config.loading import folder_name_problem
from collapselab.rundir.generation import planned

# Keys a grid may not set: they are the sweep's own, or where its trials go.
RESERVED_KEYS = ("sweep", "experiment.output_dir")
SEEDS_KEY = "experiment.seeds"


@dataclass(frozen=True, slots=True)
class Trial:
    run_id: str
    point: dict[str, Any]  # grid key -> value of this trial
    config: ExperimentConfig  # the base config with the point applied, no sweep block

    @property
    def run_dir(self) -> Path:
        return Path(self.config.experiment.output_dir) / self.config.experiment.name / self.run_id


@dataclass(frozen=True, slots=True)
class SweepPlan:
    name: str
    folder: Path  # <output_dir>/sweeps/<name>
    grid: dict[str, list[Any]]
    trials: list[Trial]
    base: ExperimentConfig  # the config the grid varies (with its sweep block)

    def state_file(self, trial: Trial) -> Path:
        return self.folder / "trials" / f"{trial.run_id}.json"

    def log_file(self, trial: Trial) -> Path:
        return self.folder / "trials" / f"{trial.run_id}.log"

    def describe(self) -> dict[str, Any]:
        """What sweep.json holds."""
        return {
            "name": self.name, "grid": self.grid, "base_config_hash": self.base.config_hash(),
            "metric": self.base.sweep.metric if self.base.sweep else None,
            "trials": [{"run_id": t.run_id, "point": t.point, "run_dir": str(t.run_dir)} for t in self.trials],
        }


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """`KEY=V1,V2,...` -> (KEY, [V1, V2, ...]); each value is read as YAML, and commas inside
    brackets or quotes do not split (`experiment.seeds=[0],[1]`, `model.name="a,b",c`)."""
    if "=" not in text:
        raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,...")
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key:
        raise ConfigError(f"--grid {text!r}: empty key")
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(raw):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(raw[start:i])
            start = i + 1
    parts.append(raw[start:])
    values = []
    for part in parts:
        if not part.strip():
            raise ConfigError(f"--grid {text!r}: empty value")
        try:
            values.append(yaml.safe_load(part))
        except yaml.YAMLError:
            raise ConfigError(f"--grid {text!r}: {part!r} is not a YAML value") from None
    return key, values


def plan_sweep(cfg: ExperimentConfig, grid_options: list[str] | None = None, name: str | None = None) -> SweepPlan:
    """The trials of `cfg`'s sweep: `sweep.grid` with `--grid` options added on top (CLI > YAML).

    Args:
        cfg: the base config (its `--set` overrides already applied).
        grid_options: `KEY=V1,V2` strings; a key already in `sweep.grid` is replaced.
        name: sweep name (else `sweep.name`, else `<experiment>-<hash of the base config>`).

    Raises:
        ConfigError: an empty grid, a reserved or repeated key, or a grid point that makes an
            invalid config (the message names the point and the key).
    """
    block = cfg.sweep
    grid: dict[str, list[Any]] = dict(block.grid) if block else {}
    for text in grid_options or []:
        key, values = parse_grid_option(text)
        grid[key] = values
    if not grid:
        raise ConfigError("sweep.grid: no grid; give --grid KEY=V1,V2 or a sweep.grid block")
    for key, values in grid.items():
        if any(key == r or key.startswith(r + ".") for r in RESERVED_KEYS):
            raise ConfigError(f"sweep.grid.{key}: a sweep cannot vary {key!r}")
        if not values:
            raise ConfigError(f"sweep.grid.{key}: no values")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ConfigError(f"sweep.grid.{key}: repeated values {values}")
    if cfg.hub is not None and "{run_id}" not in cfg.hub.prefix:
        raise ConfigError(f"hub.prefix: {cfg.hub.prefix!r} has no {{run_id}}, so a sweep's trials would overwrite each other in {cfg.hub.repo_id}")
    base = cfg.model_dump(mode="json", exclude={"sweep"})
    name = name or (block.name if block else None) or f"{cfg.experiment.name}-{_digest(base)}"
    if folder_name_problem(name) is not None:  # a --name: sweep.name is checked by the schema
        raise ConfigError(f"--name {name!r}: {folder_name_problem(name)}")
    folder = Path(cfg.experiment.output_dir) / "sweeps" / name
    trials = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values, strict=True))
        data = json.loads(json.dumps(base))  # a deep copy
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in point.items())
        for key, value in point.items():
            try:
                apply_override(data, key.split("."), value)
            except ConfigError as e:
                raise ConfigError(f"sweep.grid.{key}: {str(e).removeprefix(f'--set {key}: ')}") from None
        data["experiment"]["output_dir"] = str(folder / "runs")
        trial_cfg = config_from_dict(data, source=f"sweep point {shown}")
        check_experiment(trial_cfg, source=f"sweep point {shown}")
        trials.append(Trial(f"{name}-{_digest(point)}", point, trial_cfg))
    return SweepPlan(name, folder, grid, trials, cfg)


def trial_progress(trial: Trial) -> tuple[int, int, str | None]:
    """(generations done, generations in all, the first unfinished one as arm/seed-s/gen-g)."""
    cfg = trial.config
    arm_at = {a.name: i for i, a in enumerate(cfg.arms)}
    seed_at = {s: i for i, s in enumerate(cfg.experiment.seeds)}
    # the engine's order: seed, arm, generation
    folders = sorted(planned(trial.run_dir, cfg), key=lambda f: (seed_at[f.seed], arm_at[f.arm], f.generation))
    waiting = [f for f in folders if not f.is_done()]
    current = waiting[0].path.relative_to(trial.run_dir).as_posix() if waiting else None  # arm/seed-s/gen-g
    return len(folders) - len(waiting), len(folders), current


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]

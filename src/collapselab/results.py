"""A finished run, read from its folder or from the results database: the one reader that
the report, the dashboard, the chat server, the Python API and sweeps use.

The run directory holds every number the results database holds (metrics.json is stored
verbatim there) plus what the database only indexes (training sets, rejected records,
per-example predictions). `load_run` reads a run directory; `run_from_store` builds the
same `RunData` from the database, so the report and the dashboard compute their verdicts
and figures with one code. `resolve_run_dir` finds a run directory from a run id.
Generation folders themselves are read through `collapselab.rundir.generation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any, Protocol

from collapselab.config import ExperimentConfig, config_from_dict
from collapselab.errors import RunError
from collapselab.records import Record
from collapselab.rundir.folders import load_run_config, read_manifest
from collapselab.rundir.generation import DATA_FILES, GenerationFolder, planned
from collapselab.rundir.metrics_file import RUN_METRICS, read_run_metrics_file
from collapselab.rundir.summary import COLUMNS
from collapselab.tasks import Task, get_task

if TYPE_CHECKING:
    from collapselab.store import Store


@dataclass(slots=True)
class Generation:
    """One finished generation: where it lies and its metrics.json."""

    arm: str
    seed: int
    generation: int
    folder: Path
    metrics: dict[str, float | None]  # name -> value
    doc: dict[str, Any]  # metrics.json as written by the engine

    @property
    def refinery(self) -> dict[str, Any] | None:
        return self.doc.get("refinery")

    @property
    def files(self) -> GenerationFolder:
        """Its folder's files (`folder` is `<run>/<arm>/seed-<s>/gen-<g>`)."""
        return GenerationFolder(self.folder.parents[2], self.arm, self.seed, self.generation)


class GenerationFiles(Protocol):
    """Where a generation's bulk data comes from: its folder, or the results database."""

    def predictions(self, g: Generation) -> list[dict[str, Any]]: ...

    def records(self, g: Generation, name: str) -> list[Record]: ...

    def synthetic_scores(self, g: Generation) -> dict[str, dict[str, float]]: ...


class FolderFiles:
    """The files in the generation's folder (`name` is a data file of
    `collapselab.rundir.generation`: TRAIN, SYNTHETIC, REJECTED)."""

    def predictions(self, g: Generation) -> list[dict[str, Any]]:
        return g.files.read_predictions()

    def records(self, g: Generation, name: str) -> list[Record]:
        return g.files.read_records(name)

    def synthetic_scores(self, g: Generation) -> dict[str, dict[str, float]]:
        return g.files.read_synthetic_scores()


@dataclass(frozen=True, slots=True)
class StoredFiles:
    """The same data through the results database (`collapselab.store.Store`): predictions
    from its rows, records from the files it indexed."""

    store: Store
    run_id: str

    def predictions(self, g: Generation) -> list[dict[str, Any]]:
        return self.store.predictions(self.run_id, g.arm, g.seed, g.generation)

    def records(self, g: Generation, name: str) -> list[Record]:
        kind = DATA_FILES[name]
        return self.store.records(self.run_id, g.arm, g.seed, g.generation, kind) if self._indexed(g, kind) else []

    def synthetic_scores(self, g: Generation) -> dict[str, dict[str, float]]:
        if not self._indexed(g, "synthetic_scores"):
            return {}
        return self.store.synthetic_scores(self.run_id, g.arm, g.seed, g.generation)

    def _indexed(self, g: Generation, kind: str) -> bool:
        return any((f["arm"], f["seed"], f["generation"], f["kind"]) == (g.arm, g.seed, g.generation, kind)
                   for f in self.store.data_files(self.run_id))


@dataclass
class RunData:
    run_dir: Path
    cfg: ExperimentConfig
    manifest: dict[str, Any]
    gens: list[Generation]
    run_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # run_metrics.json's "metrics"; {} when absent
    _cache: dict[Any, Any] = field(default_factory=dict)
    files: GenerationFiles = field(default_factory=FolderFiles)

    @property
    def arms(self) -> list[str]:
        done = {g.arm for g in self.gens}
        return [a.name for a in self.cfg.arms if a.name in done]

    @property
    def seeds(self) -> list[int]:
        return sorted({g.seed for g in self.gens})

    @property
    def last_generation(self) -> int:
        return max(g.generation for g in self.gens)

    @property
    def recursive(self) -> bool:
        return self.cfg.experiment.generations > 1

    @cached_property
    def task(self) -> Task:
        """The run's task object: what its metrics mean and how its records look."""
        return get_task(self.cfg.experiment.task)

    @cached_property
    def data_kind(self) -> dict[str, str]:
        return {a.name: a.data for a in self.cfg.arms}

    @property
    def three_arm(self) -> dict[str, str] | None:
        """{'human': A, 'contaminated': B, 'synthetic': C} arm names when the run has all three."""
        roles = {}
        for arm in self.arms:
            roles.setdefault(self.data_kind[arm], arm)
        return roles if {"human", "contaminated", "synthetic"} <= roles.keys() else None

    @cached_property
    def metric_names(self) -> list[str]:
        return sorted({n for g in self.gens for n, v in g.metrics.items() if v is not None})

    def find(self, arm: str, generation: int) -> list[Generation]:
        """The finished generation `generation` of `arm`, one per seed."""
        return [g for g in self.gens if g.arm == arm and g.generation == generation]

    def final(self, arm: str) -> list[Generation]:
        """Each seed's last finished generation of `arm` (the run's last generation)."""
        return self.find(arm, self.last_generation)

    def values(self, arm: str, generation: int, metric: str) -> list[float]:
        return [g.metrics[metric] for g in self.find(arm, generation) if g.metrics.get(metric) is not None]

    def records(self, g: Generation, name: str) -> list[Record]:
        """The records of `g`'s data file `name` (TRAIN, SYNTHETIC, REJECTED); [] if it has none."""
        key = (g.folder, name)
        if key not in self._cache:
            self._cache[key] = self.files.records(g, name)
        return self._cache[key]

    def predictions(self, g: Generation) -> list[dict[str, Any]]:
        key = (g.folder, "predictions")
        if key not in self._cache:
            self._cache[key] = self.files.predictions(g)
        return self._cache[key]

    def synthetic_scores(self, g: Generation) -> dict[str, dict[str, float]]:
        """Record id -> metric -> value for the synthetic records `g` wrote ({} if none kept)."""
        key = (g.folder, "synthetic_scores")
        if key not in self._cache:
            self._cache[key] = self.files.synthetic_scores(g)
        return self._cache[key]


def finished_generations(run_dir: Path, cfg: ExperimentConfig) -> list[Generation]:
    """Every finished (DONE) generation the config plans, with its metrics.json: arm by arm
    in config order, then seed, then generation."""
    gens = []
    for f in planned(run_dir, cfg):
        if f.is_done():
            doc = f.read_metrics()
            gens.append(Generation(f.arm, f.seed, f.generation, f.path, doc.values(), doc.model_dump()))
    return gens


def load_run(run_dir: Path) -> RunData:
    """Read a run directory; every finished generation (DONE) is included."""
    if not (run_dir / "manifest.json").is_file():
        raise RunError(f"{run_dir}: not a run directory (no manifest.json)")
    cfg = load_run_config(run_dir)
    gens = finished_generations(run_dir, cfg)
    if not gens:
        raise RunError(f"{run_dir}: no finished generation yet (no DONE file); run it first")
    once = read_run_metrics_file(run_dir / RUN_METRICS).model_dump()["metrics"] if (run_dir / RUN_METRICS).is_file() else {}
    return RunData(run_dir, cfg, read_manifest(run_dir), gens, once)


def run_from_store(store: Store, run_id: str) -> RunData:
    """A recorded run as `RunData`, read through `store` only: every generation recorded
    with its metrics.json."""
    import yaml

    row = store.run(run_id)
    cfg = config_from_dict(yaml.safe_load(row["config_yaml"]), source=f"run {run_id!r} config")
    run_dir = Path(row["run_dir"] or ".")
    gens = [
        Generation(d["arm"], d["seed"], d["generation"], GenerationFolder(run_dir, d["arm"], d["seed"], d["generation"]).path,
                   {k: v["value"] for k, v in d["document"]["metrics"].items()}, d["document"])
        for d in store.documents(run_id) if d["document"] is not None
    ]
    if not gens:
        raise RunError(f"run {run_id!r}: no generation recorded with its metrics.json yet")
    return RunData(run_dir, cfg, row["manifest"], gens, files=StoredFiles(store, run_id))


def finished_generation(run_dir: Path, arm: str, seed: int, generation: int) -> GenerationFolder:
    """The folder of a finished generation; a RunError names an unknown arm or an unfinished generation."""
    folder = GenerationFolder(run_dir, arm, seed, generation)
    if not folder.is_done():
        arms = [a.name for a in load_run_config(run_dir).arms]
        if arm not in arms:
            raise RunError(f"run {run_dir.name!r} has no arm {arm!r}; its arms are {arms}")
        raise RunError(f"{folder.path}: generation {generation} of arm {arm!r}, seed {seed} is not finished")
    return folder


def sequence_perplexities(run: RunData, g: Generation) -> dict[str, float] | None:
    """Record id -> perplexity under the generation-0 model of each synthetic record `g`
    wrote (synthetic_scores.parquet); None where `synthetic_perplexity` was not computed."""
    scores = run.synthetic_scores(g)
    values = {i: s["synthetic_perplexity"] for i, s in scores.items() if s.get("synthetic_perplexity") is not None}
    return values or None


def resolve_run_dir(run: str, db: str | None) -> Path:
    """`run` as a run directory: itself, or the directory of a run id recorded in the database
    (found from the run's stored config: <output_dir>/<experiment>/<run_id>)."""
    if Path(run, "manifest.json").is_file():
        return Path(run)
    if Path(run).is_dir():
        raise RunError(f"{run}: not a run directory (no manifest.json)")
    import yaml

    from collapselab.store import Store

    with Store(db) as store:
        row = store.run(store.resolve_run(run))
    experiment = yaml.safe_load(row["config_yaml"])["experiment"]
    folder = Path(experiment.get("output_dir", "runs")) / experiment["name"] / row["run_id"]
    if not (folder / "manifest.json").is_file():
        raise RunError(f"run {run!r} is recorded in the database but its directory {folder} is not here; pass the run directory")
    return folder


# ---------------------------------------------------------------- metric tables


def headline_metrics(names: Iterable[str]) -> list[str]:
    """Of the metric `names`, those `collapselab status` shows (`rundir.summary.COLUMNS`), in
    its order: the few numbers a run is read by at a glance."""
    present = set(names)
    return [m for m, _ in COLUMNS if m in present]


def metric_format(name: str) -> str:
    """How a metric's value is written in tables: the status table's format, else 4 digits."""
    return dict(COLUMNS).get(name, "{:.4g}")


def _means(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str, int], float]:
    """(metric, arm, generation) -> the mean over seeds, from metric rows (arm, seed,
    generation, name, value: `Store.metrics`); a value not computed (None, NaN) is left out."""
    values: dict[tuple[str, str, int], list[float]] = {}
    for r in rows:
        if r["value"] is not None and r["value"] == r["value"]:
            values.setdefault((r["name"], r["arm"], r["generation"]), []).append(r["value"])
    return {k: fmean(v) for k, v in values.items()}


def arms_side_by_side(rows: Iterable[dict[str, Any]], metrics: Sequence[str], arms: Sequence[str]) -> list[dict[str, Any]]:
    """One row per (metric, generation) with a value, one column per arm (mean over seeds;
    None where the arm has none), from metric rows as `Store.metrics` returns them."""
    means = _means(rows)
    out = []
    for m in metrics:
        for g in sorted({g for (n, _, g) in means if n == m}):
            out.append({"metric": m, "generation": g, **{a: means.get((m, a, g)) for a in arms}})
    return out


def compare_runs(a: Iterable[dict[str, Any]], b: Iterable[dict[str, Any]], metrics: Sequence[str], arms: Sequence[str]) -> list[dict[str, Any]]:
    """Two runs' metrics side by side: one row per (metric, arm, generation) that either run
    has, with run A's and run B's value (mean over seeds; None where a run has none) and the
    change from A to B."""
    ma, mb = _means(a), _means(b)
    out = []
    for m in metrics:
        for arm in arms:
            for g in sorted({g for (n, x, g) in ma.keys() | mb.keys() if (n, x) == (m, arm)}):
                va, vb = ma.get((m, arm, g)), mb.get((m, arm, g))
                out.append({"metric": m, "arm": arm, "generation": g, "a": va, "b": vb,
                            "change": None if va is None or vb is None else vb - va})
    return out

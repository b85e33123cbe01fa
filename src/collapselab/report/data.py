"""What a report reads: a run directory's config, manifest and finished generations.

The run directory holds every number the results database holds (metrics.json is stored
verbatim there) plus what the database only indexes (training sets, rejected records,
per-example predictions), so the report reads the files; the database is used only to
find a run directory from a run id. The dashboard builds the same `RunData` from the
database (`run_from_store`), so both compute their verdicts and figures with one code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from collapselab.config import ExperimentConfig
from collapselab.errors import CollapselabError
from collapselab.records import Record, read_records
from collapselab.rundir.folders import gen_dir, is_done, load_run_config, read_manifest
from collapselab.rundir.metrics_file import RUN_METRICS, read_metrics_file, read_run_metrics_file
from collapselab.tasks import Task


class ReportError(CollapselabError, ValueError):
    """The run cannot be reported; the message names the run and what is missing."""


@dataclass(slots=True)
class Generation:
    arm: str
    seed: int
    generation: int
    folder: Path
    metrics: dict[str, float | None]  # name -> value
    doc: dict[str, Any]  # metrics.json as written by the engine

    @property
    def refinery(self) -> dict[str, Any] | None:
        return self.doc.get("refinery")


class GenerationFiles(Protocol):
    """Where a generation's bulk data comes from: its folder, or the results database."""

    def predictions(self, g: Generation) -> list[dict[str, Any]]: ...

    def records(self, g: Generation, name: str) -> list[Record]: ...

    def synthetic_scores(self, g: Generation) -> dict[str, dict[str, float]]: ...


class FolderFiles:
    """The files in the generation's folder (`name` is e.g. `train.parquet`)."""

    def predictions(self, g: Generation) -> list[dict[str, Any]]:
        import pyarrow.parquet as pq

        rows = pq.read_table(g.folder / "predictions.parquet").to_pylist()
        for r in rows:
            r["scores"] = json.loads(r["scores"])
        return rows

    def records(self, g: Generation, name: str) -> list[Record]:
        path = g.folder / name
        return read_records(path) if path.exists() else []

    def synthetic_scores(self, g: Generation) -> dict[str, dict[str, float]]:
        import pyarrow.parquet as pq

        path = g.folder / "synthetic_scores.parquet"
        if not path.exists():
            return {}
        table = pq.read_table(path, columns=["record_id", "scores"]).to_pydict()
        return {i: json.loads(s) for i, s in zip(table["record_id"], table["scores"], strict=True)}


@dataclass(frozen=True, slots=True)
class StoredFiles:
    """The same data through the results database (`collapselab.store.Store`): predictions
    from its rows, records from the files it indexed."""

    store: Any
    run_id: str

    def predictions(self, g: Generation) -> list[dict[str, Any]]:
        return self.store.predictions(self.run_id, g.arm, g.seed, g.generation)

    def records(self, g: Generation, name: str) -> list[Record]:
        kind = name.removesuffix(".parquet")
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
        from collapselab.tasks import get_task

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


def load_run(run_dir: Path) -> RunData:
    """Read a run directory; every finished generation (DONE) is included."""
    if not (run_dir / "manifest.json").is_file():
        raise ReportError(f"{run_dir}: not a run directory (no manifest.json)")
    cfg = load_run_config(run_dir)
    gens = []
    for arm in cfg.arms:
        for seed in cfg.experiment.seeds:
            for g in range(cfg.experiment.generations):
                folder = gen_dir(run_dir, arm.name, seed, g)
                if is_done(folder):
                    doc = read_metrics_file(folder / "metrics.json")
                    gens.append(Generation(arm.name, seed, g, folder, doc.values(), doc.model_dump()))
    if not gens:
        raise ReportError(f"{run_dir}: no finished generation yet (no DONE file); run it first")
    once = read_run_metrics_file(run_dir / RUN_METRICS).model_dump()["metrics"] if (run_dir / RUN_METRICS).is_file() else {}
    return RunData(run_dir, cfg, read_manifest(run_dir), gens, once)


def run_from_store(store: Any, run_id: str) -> RunData:
    """A recorded run as `RunData`, read through `store` (a `collapselab.store.Store`) only:
    every generation recorded with its metrics.json."""
    import yaml

    from collapselab.config import config_from_dict

    row = store.run(run_id)
    cfg = config_from_dict(yaml.safe_load(row["config_yaml"]), source=f"run {run_id!r} config")
    run_dir = Path(row["run_dir"] or ".")
    gens = [
        Generation(d["arm"], d["seed"], d["generation"], gen_dir(run_dir, d["arm"], d["seed"], d["generation"]),
                   {k: v["value"] for k, v in d["document"]["metrics"].items()}, d["document"])
        for d in store.documents(run_id) if d["document"] is not None
    ]
    if not gens:
        raise ReportError(f"run {run_id!r}: no generation recorded with its metrics.json yet")
    return RunData(run_dir, cfg, row["manifest"], gens, files=StoredFiles(store, run_id))


def sequence_perplexities(run: RunData, g: Generation) -> dict[str, float] | None:
    """Record id -> perplexity under the generation-0 model of each synthetic record `g`
    wrote (synthetic_scores.parquet); None where `synthetic_perplexity` was not computed."""
    scores = run.synthetic_scores(g)
    values = {i: s["synthetic_perplexity"] for i, s in scores.items() if s.get("synthetic_perplexity") is not None}
    return values or None


@dataclass(frozen=True, slots=True)
class Histograms:
    edges: list[float]  # bin edges shared by every generation, log-spaced
    share: dict[int, list[float]]  # generation -> share of its sequences in each bin (sums to 1)
    counts: dict[int, int]  # generation -> sequences
    reference: list[float] | None = None  # the human texts' shares on the same bins, when given


def perplexity_histograms(by_generation: dict[int, Sequence[float]], bins: int = 30,
                          reference: Sequence[float] | None = None) -> Histograms:
    """Histograms of per-sequence perplexity per generation on one set of log-spaced bins:
    the Nature 2024 figure (Shumailov et al., Fig. 1b), overlaid. Shares rather than counts,
    so generations of different sizes compare; a perplexity is at least 1. `reference` (the
    human test texts under the same model) is binned on the same edges."""
    import numpy as np

    series = [*by_generation.values(), *([reference] if reference else [])]
    pooled = np.concatenate([np.asarray(v, dtype=np.float64) for v in series if len(v)] or [np.ones(1)])
    pooled = pooled[np.isfinite(pooled)] if np.isfinite(pooled).any() else np.ones(1)
    lo, hi = max(1.0, float(pooled.min())), max(float(pooled.max()), 1.0 + 1e-9)
    edges = np.geomspace(lo, hi * (1 + 1e-9), bins + 1) if hi > lo else np.array([lo, lo + 1.0])
    share, counts = {}, {}
    for g, values in sorted(by_generation.items()):
        x = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
        hist = np.histogram(x, bins=edges)[0]
        share[g] = (hist / max(1, x.size)).tolist()
        counts[g] = int(x.size)
    ref = None
    if reference:
        x = np.clip(np.asarray(reference, dtype=np.float64), edges[0], edges[-1])
        ref = (np.histogram(x, bins=edges)[0] / max(1, x.size)).tolist()
    return Histograms(edges.tolist(), share, counts, ref)


def per_sequence_values(run: RunData, arm: str, metric: str) -> dict[int, list[float]]:
    """generation -> the per-sequence values of `metric`, pooled over seeds: those of a sample
    kept in its details (the external reference's), else every synthetic record's score in
    synthetic_scores.parquet (the generation-0 model's); generations without them are left out."""
    out: dict[int, list[float]] = {}
    for g in sorted(run.gens, key=lambda x: (x.generation, x.seed)):
        if g.arm != arm or metric not in g.doc["metrics"]:
            continue
        values = (g.doc["metrics"][metric].get("details") or {}).get("per_sequence")
        if values is None:
            values = [s[metric] for s in run.synthetic_scores(g).values() if s.get(metric) is not None]
        if values:
            out.setdefault(g.generation, []).extend(values)
    return out


def resolve_run_dir(run: str, db: str | None) -> Path:
    """`run` as a run directory: itself, or the directory of a run id recorded in the database
    (found from the run's stored config: <output_dir>/<experiment>/<run_id>)."""
    if Path(run, "manifest.json").is_file():
        return Path(run)
    if Path(run).is_dir():
        raise ReportError(f"{run}: not a run directory (no manifest.json)")
    import yaml

    from collapselab.store import Store

    with Store(db) as store:
        row = store.run(store.resolve_run(run))
    experiment = yaml.safe_load(row["config_yaml"])["experiment"]
    folder = Path(experiment.get("output_dir", "runs")) / experiment["name"] / row["run_id"]
    if not (folder / "manifest.json").is_file():
        raise ReportError(f"run {run!r} is recorded in the database but its directory {folder} is not here; pass the run directory")
    return folder

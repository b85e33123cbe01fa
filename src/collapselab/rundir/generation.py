"""One generation's folder: where it lies, the names of its files, its writer and its reader.

    <run>/<arm>/seed-<s>/gen-<g>/
      train.parquet             data_g: the records model_g trained on
      rejected.parquet          what the refinery dropped building data_g, with reasons (generation 0:
                                its builders; later: arms[].verify's filters on what generation g-1 wrote)
      refinery.json             the refinery's counts for that build
      model/                    model_g (an HF folder) and its train_log.json
      timings.json              seconds of each step finished so far
      synthetic.parquet         what model_g wrote
      predictions.parquet       one row per test example: example_id, input, reference, prediction, scores
      synthetic_scores.parquet  one row per synthetic record: record_id, scores
      metrics.json              the generation's numbers (`rundir/metrics_file.py`)
      DONE                      written last: the generation is finished

Every file is written atomically, so a file that exists is complete. The engine and the
continuous learner write a scored generation through `write_evaluation`; the store's
importer and `collapselab.results` read it through `GenerationFolder`. No other module
spells these names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.errors import RunError
from collapselab.records import Record, atomic_write_json, atomic_write_parquet, read_records
from collapselab.rundir.metrics_file import GenerationMetrics, read_metrics_file, write_metrics_file
from collapselab.textio import read_parquet

if TYPE_CHECKING:
    from collapselab.config import ExperimentConfig

TRAIN = "train.parquet"
REJECTED = "rejected.parquet"
REFINERY = "refinery.json"
MODEL = "model"
TRAIN_LOG = "train_log.json"  # inside model/: the training's losses, steps, tokens, seconds
TIMINGS = "timings.json"
SYNTHETIC = "synthetic.parquet"
PREDICTIONS = "predictions.parquet"
SYNTHETIC_SCORES = "synthetic_scores.parquet"
METRICS = "metrics.json"
DONE = "DONE"

# The files that hold a generation's data, by the kind the results database indexes them
# under; model weights are left out (large, and reproducible from the data and the config).
DATA_FILES: dict[str, str] = {
    TRAIN: "train",
    SYNTHETIC: "synthetic",
    REJECTED: "rejected",
    PREDICTIONS: "predictions",
    METRICS: "metrics",
    SYNTHETIC_SCORES: "synthetic_scores",
}
REQUIRED_FILES = (DONE, METRICS, PREDICTIONS, TRAIN, SYNTHETIC)  # in every finished generation
PREDICTION_COLUMNS = ("example_id", "input", "reference", "prediction", "scores")
SYNTHETIC_SCORE_COLUMNS = ("record_id", "scores")
# What a partial generation shows `collapselab status`, in the order the engine writes it.
STEPS = (TRAIN, MODEL, SYNTHETIC, PREDICTIONS)

_SEED_DIR = re.compile(r"^seed-(\d+)$")
_GEN_DIR = re.compile(r"^gen-(\d+)$")


@dataclass(frozen=True, slots=True)
class GenerationFolder:
    """Generation `generation` of `arm`, seed `seed`, in the run directory `run_dir`."""

    run_dir: Path
    arm: str
    seed: int
    generation: int

    @property
    def path(self) -> Path:
        return self.run_dir / self.arm / f"seed-{self.seed}" / f"gen-{self.generation}"

    # ------------------------------------------------------------ its files

    @property
    def train(self) -> Path:
        return self.path / TRAIN

    @property
    def rejected(self) -> Path:
        return self.path / REJECTED

    @property
    def refinery(self) -> Path:
        return self.path / REFINERY

    @property
    def model(self) -> Path:
        return self.path / MODEL

    @property
    def train_log(self) -> Path:
        return self.path / MODEL / TRAIN_LOG

    @property
    def timings(self) -> Path:
        return self.path / TIMINGS

    @property
    def synthetic(self) -> Path:
        return self.path / SYNTHETIC

    @property
    def predictions(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def synthetic_scores(self) -> Path:
        return self.path / SYNTHETIC_SCORES

    @property
    def metrics(self) -> Path:
        return self.path / METRICS

    @property
    def done(self) -> Path:
        return self.path / DONE

    # ------------------------------------------------------------ its state

    def is_done(self) -> bool:
        return self.done.exists()

    def mark_done(self) -> None:
        """Write DONE, last: the generation is finished."""
        atomic_write_json(self.done, {"finished": datetime.now(UTC).isoformat()})

    def status(self) -> str:
        """`done`, `pending` (no folder yet) or `partial: <the steps written>`."""
        if self.is_done():
            return "done"
        if not self.path.exists():
            return "pending"
        steps = [n for n in STEPS if (self.path / n).exists()]
        return "partial: " + (", ".join(steps) if steps else "started")

    # ------------------------------------------------------------ reading

    def read_metrics(self) -> GenerationMetrics:
        """metrics.json, checked (errors name the file and the key)."""
        return read_metrics_file(self.metrics)

    def read_records(self, name: str) -> list[Record]:
        """The records of the data file `name` (TRAIN, SYNTHETIC, REJECTED); [] when the
        generation has none (only rejected.parquet is optional)."""
        path = self.path / name
        return read_records(path) if path.exists() else []

    def read_predictions(self) -> list[dict[str, Any]]:
        """predictions.parquet's rows, each `scores` parsed (metric name -> value)."""
        rows = read_parquet(self.predictions, error=RunError).to_pylist()
        for r in rows:
            r["scores"] = json.loads(r["scores"])
        return rows

    def read_synthetic_scores(self) -> dict[str, dict[str, float]]:
        """Record id -> metric -> value of the synthetic records this generation wrote ({} if none kept)."""
        if not self.synthetic_scores.exists():
            return {}
        table = read_parquet(self.synthetic_scores, columns=list(SYNTHETIC_SCORE_COLUMNS), error=RunError).to_pydict()
        return {i: json.loads(s) for i, s in zip(table["record_id"], table["scores"], strict=True)}


def planned(run_dir: Path, cfg: ExperimentConfig, *, first: int = 0) -> list[GenerationFolder]:
    """Every generation folder the run's config plans (from generation `first` on), arm by
    arm in config order, then seed, then generation (the engine runs them seed first)."""
    e = cfg.experiment
    return [GenerationFolder(run_dir, arm.name, seed, g) for arm in cfg.arms for seed in e.seeds for g in range(first, e.generations)]


def finished(run_dir: Path) -> list[GenerationFolder]:
    """Every generation folder of the run holding a DONE file, sorted by (arm, seed, generation)."""
    found = []
    for done in run_dir.glob(f"*/seed-*/gen-*/{DONE}"):
        gen, seed = done.parent, done.parent.parent
        seed_m, gen_m = _SEED_DIR.match(seed.name), _GEN_DIR.match(gen.name)
        if seed_m and gen_m:
            found.append(GenerationFolder(run_dir, seed.parent.name, int(seed_m.group(1)), int(gen_m.group(1))))
    return sorted(found, key=lambda f: (f.arm, f.seed, f.generation))


# ---------------------------------------------------------------- writing


def _write_rows(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Rows of string columns as Parquet, atomically."""
    import pyarrow as pa

    schema = pa.schema([(c, pa.string()) for c in columns])
    atomic_write_parquet(path, pa.Table.from_pylist(list(rows), schema=schema))


def write_predictions(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """predictions.parquet: one row per test example (PREDICTION_COLUMNS, `scores` as JSON text)."""
    _write_rows(path, rows, PREDICTION_COLUMNS)


def write_evaluation(
    folder: GenerationFolder,
    *,
    metrics: dict[str, dict[str, Any]],
    predictions: Sequence[dict[str, Any]],
    synthetic_scores: Sequence[dict[str, Any]],
    train: Sequence[Record],
    synthetic: Sequence[Record],
    train_log: dict[str, Any],
    timings: dict[str, float | None],
    runtime: dict[str, str],
    refinery: dict[str, Any] | None = None,
    reference: dict[str, Any] | None = None,
) -> GenerationMetrics:
    """Write a scored generation: predictions.parquet, synthetic_scores.parquet,
    metrics.json, then DONE. The one writer of the engine and the learner.

    Args:
        folder: The generation's folder (train.parquet, model/ and synthetic.parquet written).
        metrics: Metric entries, name -> {value, version, higher_is_better, details}
            (`collapselab.metrics.registry.entries`).
        predictions: One row per test example (PREDICTION_COLUMNS, `scores` as JSON text).
        synthetic_scores: One row per synthetic record (SYNTHETIC_SCORE_COLUMNS).
        train: data_g, the records model_g trained on.
        synthetic: What model_g wrote.
        train_log: The training's log (losses, steps, tokens, seconds; other keys ignored).
        timings: Seconds per step.
        runtime: `collapselab.rundir.folders.runtime`.
        refinery: The refinery's counts when it built data_g.
        reference: The synthetic data under the run's external reference model.

    Returns:
        What metrics.json holds.
    """
    write_predictions(folder.predictions, predictions)
    _write_rows(folder.synthetic_scores, synthetic_scores, SYNTHETIC_SCORE_COLUMNS)
    doc = GenerationMetrics.model_validate({
        "arm": folder.arm, "seed": folder.seed, "generation": folder.generation, "metrics": metrics,
        "train": {k: train_log.get(k) for k in ("losses", "steps", "tokens", "seconds") if train_log.get(k) is not None},
        "timings": timings,
        "sizes": {"train_records": len(train), "synthetic_records": len(synthetic),
                  "train_synthetic_share": sum(r.source != "human" for r in train) / max(1, len(train))},
        "runtime": runtime,
        "refinery": refinery,
        "reference": reference,
    })
    write_metrics_file(folder.metrics, doc)
    folder.mark_done()
    return doc


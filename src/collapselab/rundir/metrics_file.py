"""The one model of a generation's `metrics.json`, which every reader and the writer use.

    {"arm", "seed", "generation",
     "metrics": {name: {"value", "version", "higher_is_better", "details"}},
     "train": {"losses", "steps", "tokens", "seconds"},
     "timings": {"train_s", "generate_s", "evaluate_s"},
     "sizes": {"train_records", "synthetic_records", "train_synthetic_share"},
     "runtime": {"device", "train_dtype", "infer_dtype", "generation_backend"},
     "refinery": {...} or null, "copied_from": path or null,
     "reference": {"model", "synthetic_perplexity": {"mean", "median", "p90", "p99", "sequences", "of"},
                   "synthetic_surprisal_bits", "gibberish_spearman"} or null}

`reference` is the generation's synthetic data under the run's fixed external reference
model (`evaluation.reference_model`; null when the run has none); the same numbers, with
the per-sequence values, are the `external_*` entries of "metrics".

A file that does not match is refused with a `RunError` naming the file and the key.

A run's `run_metrics.json` holds what is computed once per run, not per generation (the
human test set under the external reference model: a fixed yardstick):

    {"reference_model": name,
     "metrics": {name: {"value", "version", "higher_is_better", "details"}}}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collapselab.errors import RunError
from collapselab.records import atomic_write_json
from collapselab.textio import read_json


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # "1.5" is not a number here


_M = TypeVar("_M", bound=_Strict)


class MetricEntry(_Strict):
    value: float | None  # None: not computable for this generation (e.g. NaN written as null)
    version: str
    higher_is_better: bool
    details: dict[str, Any] = Field(default_factory=dict)


class TrainSummary(_Strict):
    losses: list[float] = Field(default_factory=list)  # per optimizer step; empty when nothing was trained
    steps: int | None = None
    tokens: int | None = None
    seconds: float | None = None


class Sizes(_Strict):
    train_records: int
    synthetic_records: int
    train_synthetic_share: float | None = None  # share of data_g not written by humans


class Runtime(_Strict):
    """How the generation ran: the one dtype policy's choices and the generation backend."""

    device: str
    train_dtype: str
    infer_dtype: str
    generation_backend: str


class SequencePerplexity(_Strict):
    """Per-sequence perplexity of a seeded sample of texts: its distribution's summary."""

    mean: float
    median: float
    p90: float
    p99: float
    sequences: int  # texts scored (the sample, less texts with no second token)
    of: int  # texts there were


class ReferenceSummary(_Strict):
    """One generation's synthetic data under the run's external reference model."""

    model: str  # `evaluation.reference_model`
    synthetic_perplexity: SequencePerplexity
    synthetic_surprisal_bits: float | None  # mean per-token surprisal (bits); None when not computed
    gibberish_spearman: float | None = None  # per-text rank correlation of surprisal with the gibberish score


class GenerationMetrics(_Strict):
    arm: str
    seed: int
    generation: int
    metrics: dict[str, MetricEntry]
    train: TrainSummary
    timings: dict[str, float | None]  # a step that ran in an earlier, interrupted process has none
    sizes: Sizes
    runtime: Runtime | None = None  # absent in files written before it was recorded
    refinery: dict[str, Any] | None = None
    copied_from: str | None = None  # generation 0 computed in another arm
    reference: ReferenceSummary | None = None  # None: no external reference model in this run

    def values(self) -> dict[str, float | None]:
        """Metric name -> value."""
        return {k: v.value for k, v in self.metrics.items()}


class RunMetrics(_Strict):
    """`run_metrics.json`: the metrics computed once per run (scope "run" in the registry)."""

    reference_model: str  # `evaluation.reference_model`, the model that scored them
    metrics: dict[str, MetricEntry]


class ModelEvaluation(_Strict):
    """`collapselab evaluate`'s metrics.json: one model scored on a task's held-out human test
    set, outside any run (`collapselab.evaluation`); its metric entries are a generation's."""

    model: str  # what was loaded: a catalogue name, a folder, a hub id
    task: str
    dataset: str
    data_path: str | None = None
    test_examples: int
    split_seed: int
    generation: dict[str, Any] | None = None  # {run, arm, seed, generation} when the model is a run's generation
    metrics: dict[str, MetricEntry]
    seconds: float
    runtime: Runtime


RUN_METRICS = "run_metrics.json"  # beside the run's manifest.json


def read_metrics_file(path: Path) -> GenerationMetrics:
    """Read and check `metrics.json`; errors name the file and the key."""
    return _read(path, GenerationMetrics)


def read_run_metrics_file(path: Path) -> RunMetrics:
    """Read and check `run_metrics.json`; errors name the file and the key."""
    return _read(path, RunMetrics)


def _read(path: Path, model: type[_M]) -> _M:
    data = read_json(path, error=RunError)  # missing, binary, empty, truncated: named, one line
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "top level"
        raise RunError(f"{path}: key {key!r}: {first['msg']} (got {_short(first.get('input'))})") from None


def read_evaluation_file(path: Path) -> ModelEvaluation:
    """Read and check `collapselab evaluate`'s `metrics.json`; errors name the file and the key."""
    return _read(path, ModelEvaluation)


def write_metrics_file(path: Path, metrics: GenerationMetrics | RunMetrics | ModelEvaluation) -> None:
    """Write atomically (a reader sees the old file or the new one, never a part)."""

    atomic_write_json(path, metrics.model_dump())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

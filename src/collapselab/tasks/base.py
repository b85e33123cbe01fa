"""What a task is to the loop, and the parts every task shares.

A task (lm, qa) is a declarative object in the spirit of lm-evaluation-harness's Task: it
says which fields its human records need, how its human data is cut, how a model trains
on its records, what a model writes for the next generation, and how a generation is
scored on the held-out human test set. The engine and the stages call the task; none of
them compares the task's name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from collapselab.records import Record

if TYPE_CHECKING:
    from collapselab.config import ArmConfig, ExperimentConfig, TrainingBlock
    from collapselab.lab import Lab
    from collapselab.metrics import EvalInputs, MetricResult
    from collapselab.training import TrainResult


@dataclass(slots=True)
class HumanData:
    """The human side of an experiment: training pool and held-out test set."""

    train: list[Record]
    test: list[Record]


@dataclass(slots=True)
class Evaluation:
    """One generation scored on the human test set."""

    metrics: dict[str, dict[str, Any]]  # name -> {value, version, higher_is_better, details}
    predictions: list[dict[str, Any]]  # one row per test example (predictions.parquet)
    synthetic_scores: list[dict[str, Any]] = field(default_factory=list)  # one row per synthetic record


class Task(Protocol):
    """The task interface the engine, the refinery and the report use."""

    name: str
    record_fields: tuple[str, ...]  # fields every human record must have
    data_builders: tuple[str, ...]  # `arms[].data` values besides "human" this task supports
    test_unit: str  # what one test example is called in tables ("question", "scored block")
    main_metrics: tuple[str, ...]  # the report's headline metrics, in order
    percent_metrics: tuple[str, ...]  # metrics on a 0-100 scale (shown /100 beside 0-1 ones)
    answers_questions: bool  # predictions are answers judged against references (else texts)

    def primary_metric(self, cfg: ExperimentConfig) -> str:
        """The metric the report leads with."""
        ...

    def config_errors(self, cfg: ExperimentConfig) -> list[str]:
        """Task-specific cross-field problems of a config, each naming its key."""
        ...

    def default_max_new_tokens(self, cfg: ExperimentConfig) -> int:
        """New tokens per generated record when `decoding.max_new_tokens` is unset."""
        ...

    def human_pools(self, cfg: ExperimentConfig, splits: Any) -> tuple[list[Record], list[Record]]:
        """The human training pool and test set drawn from a dataset's splits."""
        ...

    def tokenizer_texts(self, pool: list[Record]) -> list[str]:
        """The text a scratch tokenizer is trained on."""
        ...

    def prepare_human(self, cfg: ExperimentConfig, pools: tuple[list[Record], list[Record]], tokenizer: Any) -> HumanData:
        """The pools as the loop uses them (lm: cut into token blocks)."""
        ...

    def precheck(self, cfg: ExperimentConfig, max_positions: int) -> None:
        """Raise ConfigError for what would fail only after training (e.g. prompt room)."""
        ...

    def train(self, lab: Lab, model: Any, records: list[Record], recipe: TrainingBlock, seed: int, desc: str) -> TrainResult:
        """Train `model` on `records` with `recipe`."""
        ...

    def write_synthetic(self, lab: Lab, model: Any, arm: ArmConfig, generation: int, seed: int) -> list[Record]:
        """What model_g writes for the next generation, one record per human training record."""
        ...

    def evaluate(self, lab: Lab, model: Any, reference: Any, synthetic: list[Record], seed: int) -> Evaluation:
        """Score model_g (and its synthetic data) on the held-out human test set."""
        ...

    def baselines(self, lab: Lab, load_base: Callable[[], Any | None], seed: int) -> dict[str, dict[str, Any]]:
        """Generation-0-only reference figures (lm: a unigram model; qa: the zero-shot base,
        loaded by `load_base`, which gives None for a scratch model)."""
        ...

    def stage_inputs(self, metrics: dict[str, dict[str, Any]]) -> tuple[float, float] | None:
        """(accuracy as a fraction, chance) for the collapse stage, or None if the task has none."""
        ...


# ---------------------------------------------------------------- shared parts


def generator_tag(cfg: ExperimentConfig, arm: str, generation: int, seed: int, **extra: Any) -> str:
    """The provenance of a generated record: model, arm, generation, seed, decoding (JSON)."""
    return json.dumps(
        {"model": cfg.model.name, "arm": arm, "generation": generation, "seed": seed,
         "decoding": cfg.decoding.model_dump(mode="json"), **extra},
        sort_keys=True,
    )


def metric_names(lab: Lab, defaults: list[str]) -> list[str]:
    """The metrics of this run: `evaluation.metrics`, else the task's defaults."""
    return list(lab.cfg.evaluation.metrics or defaults)


def eval_inputs(lab: Lab, model: Any, reference: Any, synthetic: list[Record] | None, seed: int) -> EvalInputs:
    from collapselab.metrics import EvalInputs
    from collapselab.models import device

    cfg = lab.cfg
    external = lab.reference.inputs(cfg.evaluation.reference_sequences) if lab.reference is not None else {}
    return EvalInputs(
        task=lab.task.name, test=lab.human.test, model=model, tokenizer=lab.tokenizer, reference_model=reference,
        synthetic=synthetic, human_train=lab.human.train, background_texts=lab.gibberish_background, seq_len=cfg.training.seq_len,
        batch_tokens=cfg.evaluation.batch_tokens, device=device(), seed=seed, **external,
    )


def score(names: list[str], inputs: EvalInputs) -> dict[str, MetricResult]:
    """Compute the named metrics; metrics of synthetic data only where there is some."""
    from collapselab.metrics import evaluate, get_metric

    wanted = [n for n in names if inputs.synthetic is not None or "synthetic" not in get_metric(n).needs]
    return evaluate(wanted, inputs)


def as_entries(results: dict[str, MetricResult]) -> dict[str, dict[str, Any]]:
    """Metric results in the metrics.json shape."""
    return {
        name: {"value": r.value, "version": r.version, "higher_is_better": r.higher_is_better, "details": r.details}
        for name, r in results.items()
    }


def per_example(results: dict[str, MetricResult], ids: list[str], scope: str) -> dict[str, dict[str, float]]:
    """Per-example scores keyed by example id, from the metrics whose examples are `scope`.

    A metric's examples are the synthetic records when it needs `synthetic`, else the test
    examples. Scores are matched to ids by position within their own scope only, and a
    length that differs from that scope's is a bug, never a reason to attach them elsewhere.
    """
    from collapselab.metrics import get_metric

    out: dict[str, dict[str, float]] = {i: {} for i in ids}
    for name, r in results.items():
        if r.per_example is None:
            continue
        own = "synthetic" if "synthetic" in get_metric(name).needs else "test"
        if own != scope:
            continue
        if len(r.per_example) != len(ids):
            raise RuntimeError(f"metric {name!r}: {len(r.per_example)} per-example scores for {len(ids)} {scope} examples")
        for i, v in zip(ids, r.per_example, strict=True):
            if v is not None:  # e.g. has_ans_f1 of an unanswerable question
                out[i][name] = v
    return out


def synthetic_score_rows(results: dict[str, MetricResult], synthetic: list[Record] | None) -> list[dict[str, Any]]:
    """One row per synthetic record with its per-record scores (e.g. perplexity under model_0)."""
    if not synthetic:
        return []
    ids = [r.id for r in synthetic]
    scores = per_example(results, ids, "synthetic")
    return [{"record_id": i, "scores": json.dumps(scores[i])} for i in ids]

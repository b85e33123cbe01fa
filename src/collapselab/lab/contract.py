"""The loop's contract: what every generation of a run shares (`Lab`, `HumanData`), what a
task is to the loop (the `Task` Protocol) and what it returns when it scores a generation
(`Evaluation`).

The engine builds one `Lab` per run, whole, and hands it to the stages (training starts, the
refinery's builders, the task's steps); no stage imports the engine. A task (lm, qa) is a
declarative object in the spirit of lm-evaluation-harness's Task: it says which fields its
human records need, how its human data is cut, how a model trains on its records, what a
model writes for the next generation, and how a generation is scored on the held-out human
test set. The engine and the stages call the task; none of them compares the task's name.
The tasks themselves live in `collapselab.tasks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from collapselab.records import Record

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from collapselab.config import ArmConfig, ExperimentConfig, TrainingBlock
    from collapselab.datasets import Splits
    from collapselab.lab.events import Listener
    from collapselab.metrics.registry import Metric
    from collapselab.models.loading import ReferenceModel
    from collapselab.models.prompts import PromptFormat
    from collapselab.training.loop import TrainResult

__all__ = ["Evaluation", "HumanData", "Lab", "Task"]


@dataclass(slots=True)
class HumanData:
    """The human side of an experiment: training pool and held-out test set."""

    train: list[Record]
    test: list[Record]


@dataclass(slots=True)
class Lab:
    """One run's shared state, built whole by `engine.run_experiment`."""

    cfg: ExperimentConfig
    task: Task
    run_dir: Path
    human: HumanData
    tokenizer: PreTrainedTokenizerBase  # the scratch BPE, or the pretrained model's own
    max_positions: int  # longest sequence the model takes
    max_new_tokens: int  # new tokens per generated record (`task.max_new_tokens`): a continuation, an answer
    prompt_format: PromptFormat  # bound to `tokenizer`
    reference: ReferenceModel | None  # the fixed external reference (evaluation.reference_model); None: the run has none
    gibberish_background: list[str]  # evaluation.gibberish_background's text, read once per run
    mmlu: tuple[list[Record], list[Record]] | None  # evaluation.mmlu's test questions and dev exemplars; None: off
    db_url: str | None = None
    listeners: list[Listener] = field(default_factory=list)
    # Per-run caches, filled on first use (a resumed run may never need them):
    base_dirs: dict[int, Path] = field(default_factory=dict)  # seed -> cached scratch base folder
    baselines: dict[str, dict[str, Any]] | None = None  # generation 0's baseline metrics (the same for every arm and seed)


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
    training_extras: bool  # supplies a validation split, a score and loss weights (training.validation_share, early_stopping_*, loss_weights)
    default_metrics: tuple[str, ...]  # per generation, when `evaluation.metrics` is unset
    reference_metrics: tuple[str, ...]  # added to them when the run loads its external reference
    yardstick_metrics: tuple[str, ...]  # once per run under the external reference (run_metrics.json)

    def primary_metric(self, cfg: ExperimentConfig) -> str:
        """The metric the report leads with."""
        ...

    def scores(self, metric: Metric) -> bool:
        """The registered metric applies to this task's records (`evaluation.metrics` may name it)."""
        ...

    def config_problems(self, cfg: ExperimentConfig) -> list[str]:
        """What this task finds wrong with a config, one line per problem naming its key
        (called by `collapselab.checks` only)."""
        ...

    def position_problems(self, cfg: ExperimentConfig, max_positions: int) -> list[str]:
        """What does not fit in the model's `max_positions` (e.g. a prompt and its
        continuation), one line per problem naming its key (called by `collapselab.checks` only)."""
        ...

    def data_problems(self, cfg: ExperimentConfig, human: HumanData, tokenizer: PreTrainedTokenizerBase) -> list[str]:
        """What the prepared human data makes impossible (e.g. a test set too short to score),
        one line per problem naming its key (called by `collapselab.checks` only)."""
        ...

    def max_new_tokens(self, cfg: ExperimentConfig) -> int:
        """New tokens per generated record: `decoding.max_new_tokens`, else the task's default."""
        ...

    def human_pools(self, cfg: ExperimentConfig, splits: Splits) -> tuple[list[Record], list[Record]]:
        """The human training pool and test set drawn from a dataset's splits."""
        ...

    def tokenizer_texts(self, pool: list[Record]) -> list[str]:
        """The text a scratch tokenizer is trained on."""
        ...

    def prepare_human(self, cfg: ExperimentConfig, pools: tuple[list[Record], list[Record]], tokenizer: PreTrainedTokenizerBase) -> HumanData:
        """The pools as the loop uses them (lm: cut into token blocks)."""
        ...

    def train(self, lab: Lab, model: PreTrainedModel, records: list[Record], recipe: TrainingBlock, seed: int, desc: str) -> TrainResult:
        """Train `model` on `records` with `recipe`."""
        ...

    def write_synthetic(self, lab: Lab, model: PreTrainedModel, arm: ArmConfig, generation: int, seed: int) -> list[Record]:
        """What model_g writes for the next generation, one record per human training record."""
        ...

    def evaluate(self, lab: Lab, model: PreTrainedModel, generation0: PreTrainedModel, synthetic: list[Record] | None, seed: int) -> Evaluation:
        """Score model_g (and its synthetic data) on the held-out human test set; `generation0` is
        the arm's generation-0 model, which scores the synthetic data as in the Nature 2024 study.
        `synthetic` None: a model scored alone (`collapselab evaluate`), no synthetic-data metrics."""
        ...

    def baselines(self, lab: Lab, load_base: Callable[[], PreTrainedModel | None], seed: int) -> dict[str, dict[str, Any]]:
        """Generation-0-only reference figures (lm: a unigram model; qa: the zero-shot base,
        loaded by `load_base`, which gives None for a scratch model)."""
        ...

    def stage_inputs(self, metrics: dict[str, dict[str, Any]]) -> tuple[float, float] | None:
        """(accuracy as a fraction, chance) for the collapse stage, or None if the task has none."""
        ...

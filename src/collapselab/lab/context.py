"""What every generation of a run shares: the config, the run directory, the human data,
the tokenizer, the task and what the engine loads once per run. The engine builds one
`Lab` per run, whole, and hands it to the stages (training starts, the refinery's
builders); no stage imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.records import Record

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from collapselab.config import ExperimentConfig
    from collapselab.lab.events import Listener
    from collapselab.lab.task import Task
    from collapselab.models.loading import ReferenceModel
    from collapselab.models.prompts import PromptFormat

__all__ = ["HumanData", "Lab"]


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

"""What every generation of a run shares: the config, the run directory, the human data,
the tokenizer and the task. The engine builds one `Lab` per run and hands it to the stages
(training starts, the refinery's builders); no stage imports the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.tasks.base import HumanData

if TYPE_CHECKING:
    from collapselab.config import ExperimentConfig
    from collapselab.events import Listener
    from collapselab.tasks import Task

__all__ = ["HumanData", "Lab"]


@dataclass(slots=True)
class Lab:
    """One run's shared state (built by `engine.run_experiment`)."""

    cfg: ExperimentConfig
    task: Task
    run_dir: Path
    human: HumanData
    tokenizer: Any  # the run's tokenizer (the scratch BPE, or the pretrained model's)
    max_positions: int  # longest sequence the model takes
    db_url: str | None = None
    listeners: list[Listener] = field(default_factory=list)
    prompt_format: Any = None  # collapselab.prompts.PromptFormat bound to the tokenizer
    base_dirs: dict[int, Path] = field(default_factory=dict)  # seed -> cached scratch base folder
    reference: Any = None  # collapselab.metrics.external.ReferenceModel, loaded once per run; None: the run has none
    gibberish_background: list[str] = field(default_factory=list)  # evaluation.gibberish_background's text, read once per run
    baselines: dict[str, Any] | None = None  # generation 0's baseline metrics (the same for every arm and seed), once computed
    _mmlu: Any = None

    def mmlu_questions(self) -> Any:
        """The MMLU test questions and dev exemplars of `evaluation.mmlu`, read once per run."""
        if self._mmlu is None:
            from collapselab.tasks import mcq

            self._mmlu = mcq.questions(self.cfg.evaluation.mmlu)
        return self._mmlu

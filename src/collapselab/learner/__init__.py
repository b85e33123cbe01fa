"""The continuous learner: a stream of documents, a fine-tune step every N of them, a
checkpoint the chat server picks up, and an evaluation on held-out human text per step.

`run_learner(cfg)` runs it; `collapselab learn CONFIG` is the command. Heavy imports happen
inside the calls.
"""

from __future__ import annotations

from collapselab.learner.config import LearnerConfig, LearnerError, load_learner_config
from collapselab.learner.loop import run_learner as run


def run_learner(cfg: LearnerConfig, **kwargs):
    return run(cfg, **kwargs)


__all__ = ["LearnerConfig", "LearnerError", "load_learner_config", "run_learner"]

"""Early stopping on a validation split: when to validate, patience, the best weights kept.

SelfPlagAI stops fine-tuning when its loss stops improving; here the signal is a held-out
split, by its token loss or by a metric the caller computes (e.g. BERTScore F1 of the
model's answers), and the weights of the best validation are put back at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from collapselab.errors import ConfigError

if TYPE_CHECKING:
    from collapselab.config import TrainingBlock


@dataclass
class Validator:
    """What the loop calls at each validation, and which way is better."""

    value: Callable[[torch.nn.Module], float]  # called with the LM head, the model without it
    higher_is_better: bool


def check_recipe(
    cfg: TrainingBlock, *, validation: bool, score: bool, weights: bool, where: str
) -> None:
    """Refuse a recipe that asks for a validation split, a metric or loss weights this training
    call was not given (the task supplies them), so no setting is silently ignored.

    Args:
        cfg: The training recipe.
        validation: Held-out pairs were passed.
        score: A score callback was passed.
        weights: Per-example loss weights were passed.
        where: What trains (for the message), e.g. "lm training".

    Raises:
        ConfigError: Naming the `training.*` key that has nothing to act on.
    """

    if cfg.validation_share > 0 and not (validation or score):
        raise ConfigError(
            f"training.validation_share: {cfg.validation_share} but {where} was given no validation split"
        )
    if cfg.early_stopping_patience is not None and not (validation or score):
        raise ConfigError(
            f"training.early_stopping_patience: {where} was given no validation split or score to stop on"
        )
    if cfg.early_stopping_metric != "loss" and not score:
        raise ConfigError(
            f"training.early_stopping_metric: {cfg.early_stopping_metric!r} but {where} was given no "
            "score callback that computes it"
        )
    if cfg.loss_weights != "uniform" and not weights:
        raise ConfigError(
            f"training.loss_weights: {cfg.loss_weights!r} but {where} was given no per-example weights"
        )


def validation_split(n: int, share: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded (train, validation) indices of range(n): round(share * n) held out, at least one.

    Args:
        n: Number of examples (at least 2 when share > 0).
        share: Share held out (`training.validation_share`); 0 holds out nothing.
        seed: Seed of the draw.

    Returns:
        Ascending train indices and ascending validation indices, disjoint, covering range(n).
    """
    if share == 0:
        return list(range(n)), []
    k = min(n - 1, max(1, round(share * n)))
    if k < 1:
        raise ValueError(f"training.validation_share: {n} example(s) leave none to hold out")
    held = set(torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].tolist())
    return [i for i in range(n) if i not in held], sorted(held)


def validate(
    model: Any, validator: Validator, head: torch.nn.Module, device: torch.device
) -> float:
    """One validation, the model in eval mode under no_grad, then back to training mode."""
    # Its own RNG state: a score callback that samples must not shift training's dropout.
    model.eval()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            with torch.no_grad():
                return validator.value(head)
    finally:
        model.train()


class EarlyStopping:
    """Patience over validations, and a copy of the trainable weights of the best one."""

    def __init__(self, cfg: TrainingBlock, params: list[torch.nn.Parameter]) -> None:
        self.patience = cfg.early_stopping_patience
        self.min_delta = cfg.early_stopping_min_delta
        self.params = params
        self.best: float | None = None
        self.best_step: int | None = None
        self.best_weights: list[torch.Tensor] = []
        self.waited = 0

    def should_stop(self, step: int, value: float, validator: Validator) -> bool:
        """Record the validation after `step`; True once patience has run out."""
        if self.best is None:
            gain = math.inf
        else:
            gain = value - self.best if validator.higher_is_better else self.best - value
        if gain > self.min_delta:
            self.best, self.best_step, self.waited = value, step, 0
            # Only trainable weights change in training: under LoRA this copies the adapters.
            self.best_weights = [p.detach().clone() for p in self.params]
            return False
        self.waited += 1
        return self.waited >= self.patience

    def restore_best(self) -> int | None:
        """Put the best validation's weights back; return its step."""
        with torch.no_grad():
            for p, best in zip(self.params, self.best_weights, strict=True):
                p.copy_(best)
        return self.best_step

"""Collapse stage of each generation: A knowledge preserved, B fluent but wrong, C collapsed.

Inputs per generation: an accuracy as a fraction (MMLU accuracy, or QA F1 / 100), the
chance level (0.25 for MMLU, 0 where there is none), generation 0's accuracy, and
optionally the mean gibberish score (0-3) of the synthetic data the generation wrote.
Thresholds come from `evaluation.stages` in the config (`StageBlock`):

- C, collapsed: the synthetic data is gibberish (mean score < `gibberish_floor`), or the
  accuracy is within `chance_margin` of chance;
- A, knowledge preserved: the generation keeps at least `retained` of generation 0's
  above-chance accuracy, (acc - chance) / (acc_0 - chance) >= retained;
- B, fluent but wrong: otherwise (accuracy fell, the text is still not gibberish).

If generation 0 itself is at chance there is no knowledge to lose, and every generation
that is not gibberish and above chance counts as A.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from collapselab.metrics.registry import register_computed

if TYPE_CHECKING:
    from collapselab.config import StageBlock


StageName = Literal["A", "B", "C"]
STAGE_MEANING = {"A": "knowledge preserved", "B": "fluent but wrong", "C": "collapsed"}


@dataclass(frozen=True, slots=True)
class Stage:
    stage: StageName
    reason: str
    retained: float | None  # share of generation 0's above-chance accuracy kept


def collapse_stage(accuracy: float, gen0_accuracy: float, *, thresholds: StageBlock, chance: float = 0.0,
                   gibberish: float | None = None) -> Stage:
    """The stage of one generation (accuracies as fractions in [0, 1]; thresholds: `evaluation.stages`)."""
    t = thresholds
    for name, v in (("accuracy", accuracy), ("gen0_accuracy", gen0_accuracy), ("chance", chance)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {v}")
    headroom = gen0_accuracy - chance
    retained = (accuracy - chance) / headroom if headroom > t.chance_margin else None
    if gibberish is not None and gibberish < t.gibberish_floor:
        return Stage("C", f"synthetic data is gibberish (mean score {gibberish:.2f} < {t.gibberish_floor})", retained)
    if accuracy - chance <= t.chance_margin:
        return Stage("C", f"accuracy {accuracy:.3f} is within {t.chance_margin} of chance {chance}", retained)
    if retained is None or retained >= t.retained:
        return Stage("A", "accuracy kept" if retained is not None else "generation 0 is at chance", retained)
    return Stage("B", f"kept {retained:.0%} of generation 0's above-chance accuracy (< {t.retained:.0%})", retained)


def collapse_stages(accuracies: Sequence[float], *, chance: float = 0.0,
                    gibberish: Sequence[float | None] | None = None,
                    thresholds: StageBlock | None = None) -> list[Stage]:
    """Stages of generations 0..G-1 of one arm; generation 0 is the reference."""
    if not accuracies:
        raise ValueError("no generations")
    gib = list(gibberish) if gibberish is not None else [None] * len(accuracies)
    if len(gib) != len(accuracies):
        raise ValueError(f"{len(accuracies)} accuracies but {len(gib)} gibberish scores")
    return [collapse_stage(a, accuracies[0], chance=chance, gibberish=g, thresholds=thresholds)
            for a, g in zip(accuracies, gib, strict=True)]


register_computed(
    "collapse_stage", higher_is_better=False, version="1", label="collapse stage", unit="0 A, 1 B, 2 C",
    description="Collapse stage of a generation: 0 A knowledge preserved, 1 B fluent but wrong, 2 C collapsed "
                "(stage, reason, retained share and the accuracy judged in details).",
    computed_by="the engine (engine.collapse_stage)",
)

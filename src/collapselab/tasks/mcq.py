"""MMLU as an evaluation beside any task: knowledge retention per generation.

`evaluation.mmlu` names subjects and/or subject groups, prompt formats, questions per
subject and the scoring. Every generation's model (causal or seq2seq) answers the same
questions; the results land in metrics.json as ordinary metric entries:

    mmlu_accuracy                      the first format's accuracy over every question
    mmlu_accuracy.group.<group>        per MMLU subject group (STEM, humanities, ...)
    mmlu_accuracy.subject.<subject>    per subject
    mmlu_<format>_accuracy[...]        the same for every further format

so the results database, `collapselab results` and the report show them like any metric.
The collapse stage (metrics/stages.py) is judged on `mmlu_accuracy` against chance 0.25.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from collapselab.datasets import load_mmlu
from collapselab.metrics.registry import entry
from collapselab.models.loading import device
from collapselab.records import Record

if TYPE_CHECKING:
    from collapselab.config import MMLUBlock

CHANCE = 0.25


def metric_name(fmt: str, first: bool, part: str = "") -> str:
    base = "mmlu_accuracy" if first else f"mmlu_{fmt}_accuracy"
    return f"{base}.{part}" if part else base


def questions(block: MMLUBlock) -> tuple[list[Record], list[Record]]:
    """The test questions (the first `per_subject` of each chosen subject) and the dev
    exemplars of those subjects (few-shot prompts)."""
    from collapselab.metrics.mmlu import SUBJECT_GROUP

    subjects = list(dict.fromkeys([*block.subjects, *(s for s, g in SUBJECT_GROUP.items() if g in block.groups)]))
    chosen = sorted(subjects) if subjects else None
    test = load_mmlu("test", chosen, block.path)
    if block.per_subject is not None:
        seen: dict[str, int] = defaultdict(int)
        kept = []
        for r in test:
            seen[r.subject or ""] += 1
            if seen[r.subject or ""] <= block.per_subject:
                kept.append(r)
        test = kept
    dev = load_mmlu("dev", chosen, block.path) if "few_shot" in block.formats else []
    return test, dev


def evaluate(model: Any, tokenizer: Any, block: MMLUBlock, records: tuple[list[Record], list[Record]],
             max_positions: int) -> dict[str, dict[str, Any]]:
    """MMLU accuracies of `model` in the metrics.json shape (see the module docstring)."""
    from collapselab.metrics.mmlu import evaluate_mmlu

    test, dev = records
    out: dict[str, dict[str, Any]] = {}
    for i, fmt in enumerate(block.formats):
        res = evaluate_mmlu(model, tokenizer, test, fmt=fmt, scoring=block.scoring, dev_records=dev,
                            greedy_check=block.greedy_check, batch_tokens=block.batch_tokens,
                            max_length=max_positions, device=device())
        details = {**res.details, "format": fmt, "scoring": block.scoring, "greedy_proportion": res.greedy_proportion,
                   "per_group": res.per_group, "per_subject": res.per_subject}
        parts: list[tuple[str, float, dict[str, Any]]] = [("", res.accuracy, details)]
        parts += [("group." + group.replace(" ", "_"), acc, {"group": group}) for group, acc in res.per_group.items()]
        parts += [("subject." + subject, acc, {"subject": subject}) for subject, acc in res.per_subject.items()]
        for part, value, d in parts:
            name = metric_name(fmt, i == 0, part)
            out[name] = entry(name, value, {**d, "chance": CHANCE})  # version and direction: metrics/mmlu.py registers them
    return out

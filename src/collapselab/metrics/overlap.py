"""ROUGE-1/2/L F-measure of answers against their references, via Google's `rouge-score`.

`rouge_f(prediction, references)` is rouge-score's own number: `RougeScorer.score_multi`
(best reference per ROUGE type), default tokenizer, no stemming. The registered metrics
add only the SQuAD v2 no-answer rule for questions without references (an empty
prediction scores 1, anything else 0), since ROUGE has no notion of abstaining.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from collapselab.metrics.qa import has_ans_breakdown, qa_pairs
from collapselab.metrics.registry import EvalInputs, MetricValue, register_metric

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)


def rouge_f(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-measure of `prediction` against its best reference (rouge-score)."""
    if not references:
        raise ValueError("rouge_f needs at least one reference")
    scores = _scorer().score_multi(list(references), prediction)
    return {t: scores[t].fmeasure for t in ROUGE_TYPES}


def rouge_with_no_answer(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """`rouge_f`, and for an unanswerable question 1.0 exactly when the prediction is empty."""
    if not references:
        v = float(not prediction.strip())
        return dict.fromkeys(ROUGE_TYPES, v)
    return rouge_f(prediction, references)


def _rouge_all(inputs: EvalInputs) -> dict[str, list[float]]:
    # The three ROUGE metrics share one scoring pass per evaluation.
    key = ("rouge",)
    if key not in inputs.extra:
        preds, refs = qa_pairs(inputs)
        rows = [rouge_with_no_answer(p, r) for p, r in zip(preds, refs, strict=True)]
        inputs.extra[key] = {t: [row[t] for row in rows] for t in ROUGE_TYPES}
    return inputs.extra[key]


def _rouge_metric(inputs: EvalInputs, rouge_type: str) -> MetricValue:
    per = _rouge_all(inputs)[rouge_type]
    return MetricValue(sum(per) / len(per), per, has_ans_breakdown(per, [r.answers for r in inputs.test]))


@register_metric("rouge1", task="qa", higher_is_better=True, version="1", needs=("predictions",), requires=("rouge_score",),
                 label="ROUGE-1", unit="F-measure, 0-1")
def rouge1(inputs: EvalInputs) -> MetricValue:
    """ROUGE-1 F-measure (0-1, rouge-score, best reference; v2 no-answer rule)."""
    return _rouge_metric(inputs, "rouge1")


@register_metric("rouge2", task="qa", higher_is_better=True, version="1", needs=("predictions",), requires=("rouge_score",),
                 label="ROUGE-2", unit="F-measure, 0-1")
def rouge2(inputs: EvalInputs) -> MetricValue:
    """ROUGE-2 F-measure (0-1, rouge-score, best reference; v2 no-answer rule)."""
    return _rouge_metric(inputs, "rouge2")


@register_metric("rougeL", task="qa", higher_is_better=True, version="1", needs=("predictions",), requires=("rouge_score",),
                 label="ROUGE-L", unit="F-measure, 0-1")
def rouge_l(inputs: EvalInputs) -> MetricValue:
    """ROUGE-L F-measure (0-1, rouge-score, best reference; v2 no-answer rule)."""
    return _rouge_metric(inputs, "rougeL")

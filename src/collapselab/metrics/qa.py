"""QA metrics: SQuAD exact match and token F1 (official algorithm), Jaccard, grounding, length.

Exact match and F1 follow the official `evaluate-v2.0.py` of SQuAD 2.0 step for step:

- normalisation: lower case, drop ASCII punctuation, drop the articles a/an/the as whole
  words, collapse whitespace (in that order);
- references that normalise to the empty string are dropped; a question with no
  reference left is unanswerable and its only correct answer is the empty string, so an
  empty prediction scores 1 there and 0 on an answerable question (the v2 no-answer rule);
- the score of a question is the maximum over its references;
- HasAns/NoAns is decided by whether the question has any reference at all (before
  normalisation), exactly as the official script does.

Scores of the registered metrics are percentages (0-100) like the official script, and
their per-example values are on the same scale, so the mean of `per_example` is `value`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from collapselab.metrics.registry import (
    EvalInputs,
    MetricValue,
    get_metric,
    register_computed,
    register_metric,
)

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD's official answer normalisation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """Tokens of the normalised answer (the official `get_tokens`)."""
    return normalize_answer(text).split() if text else []


def gold_answers(references: Sequence[str]) -> list[str]:
    """References that survive normalisation, or `[""]` for an unanswerable question."""
    kept = [a for a in references if normalize_answer(a)]
    return kept or [""]


def _exact_one(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def _f1_one(gold: str, prediction: str) -> float:
    gold_toks, pred_toks = answer_tokens(gold), answer_tokens(prediction)
    if not gold_toks or not pred_toks:
        # Either side is a no-answer: right only when both are.
        return float(gold_toks == pred_toks)
    num_same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference (v2 no-answer rule)."""
    return float(max(_exact_one(g, prediction) for g in gold_answers(references)))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """Bag-of-tokens F1 against the best reference (v2 no-answer rule)."""
    return max(_f1_one(g, prediction) for g in gold_answers(references))


def jaccard(prediction: str, references: Sequence[str]) -> float:
    """Jaccard overlap of normalised token sets, best reference; two empty sets agree (1.0)."""
    pred = set(answer_tokens(prediction))
    best = 0.0
    for g in gold_answers(references):
        gold = set(answer_tokens(g))
        union = pred | gold
        best = max(best, len(pred & gold) / len(union) if union else 1.0)
    return best


def answer_in_context(prediction: str, context: str) -> bool:
    """Whether the normalised prediction occurs in the normalised context.

    The empty prediction (abstaining) invents nothing, so it counts as found.
    """
    pred = normalize_answer(prediction)
    return not pred or f" {pred} " in f" {normalize_answer(context)} "


def answer_length(prediction: str) -> int:
    """Whitespace tokens of the raw prediction."""
    return len(prediction.split())


def squad_eval(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """The official evaluation dict: exact, f1, total and the HasAns/NoAns breakdown (0-100)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    em = [exact_match(p, r) for p, r in zip(predictions, references, strict=True)]
    f1 = [token_f1(p, r) for p, r in zip(predictions, references, strict=True)]
    out: dict[str, float] = _eval_block("", em, f1)
    has = [bool(r) for r in references]
    for prefix, want in (("HasAns_", True), ("NoAns_", False)):
        idx = [i for i, h in enumerate(has) if h == want]
        if idx:
            out.update(_eval_block(prefix, [em[i] for i in idx], [f1[i] for i in idx]))
    return out


def _eval_block(prefix: str, em: list[float], f1: list[float]) -> dict[str, float]:
    n = len(em)
    return {f"{prefix}exact": 100.0 * sum(em) / n, f"{prefix}f1": 100.0 * sum(f1) / n, f"{prefix}total": n}


# ---- registered metrics: read inputs.predictions and inputs.test[i].answers ----------


def qa_pairs(inputs: EvalInputs) -> tuple[list[str], list[tuple[str, ...]]]:
    """Predictions and reference lists of a QA evaluation, checked to line up."""
    preds = inputs.predictions
    if preds is None or len(preds) != len(inputs.test):
        n = None if preds is None else len(preds)
        raise ValueError(f"qa metrics need one prediction per test record: {n} predictions, {len(inputs.test)} records")
    return list(preds), [r.answers for r in inputs.test]


def has_ans_breakdown(per_example: list[float], references: list[tuple[str, ...]]) -> dict[str, float]:
    out: dict[str, float] = {"total": len(per_example)}
    for prefix, want in (("HasAns", True), ("NoAns", False)):
        vals = [v for v, r in zip(per_example, references, strict=True) if bool(r) == want]
        out[f"{prefix}_total"] = len(vals)
        if vals:
            out[prefix] = sum(vals) / len(vals)
    return out


def _percent_metric(inputs: EvalInputs, score) -> MetricValue:
    preds, refs = qa_pairs(inputs)
    per = [100.0 * score(p, r) for p, r in zip(preds, refs, strict=True)]
    return MetricValue(sum(per) / len(per), per, has_ans_breakdown(per, refs))


@register_metric("exact_match", task="qa", higher_is_better=True, version="1", needs=("predictions",), label="EM", unit="%")
def exact_match_metric(inputs: EvalInputs) -> MetricValue:
    """SQuAD exact match (0-100), official normalisation and v2 no-answer rule; HasAns/NoAns in details."""
    return _percent_metric(inputs, exact_match)


@register_metric("f1", task="qa", higher_is_better=True, version="1", needs=("predictions",), label="F1", unit="%")
def f1_metric(inputs: EvalInputs) -> MetricValue:
    """SQuAD token F1 (0-100), official normalisation and v2 no-answer rule; HasAns/NoAns in details."""
    return _percent_metric(inputs, token_f1)


def _subset(inputs: EvalInputs, answerable: bool) -> MetricValue:
    """Mean over the answerable (F1) or unanswerable (exact match) test questions; per
    example, the question's score, None for a question of the other kind."""
    preds, refs = qa_pairs(inputs)
    scorer = token_f1 if answerable else exact_match
    per = [100.0 * scorer(p, r) if bool(r) == answerable else None for p, r in zip(preds, refs, strict=True)]
    vals = [v for v in per if v is not None]
    total = "HasAns_total" if answerable else "NoAns_total"
    return MetricValue(sum(vals) / len(vals) if vals else float("nan"), per, {total: len(vals)})


# version 2: per-question scores (None for the other kind), so arms can be compared question by question
@register_metric("has_ans_f1", task="qa", higher_is_better=True, version="2", needs=("predictions",), label="HasAns F1", unit="%")
def has_ans_f1_metric(inputs: EvalInputs) -> MetricValue:
    """SQuAD token F1 (0-100) over the answerable test questions only (the official HasAns_f1)."""
    return _subset(inputs, True)


@register_metric("no_ans_accuracy", task="qa", higher_is_better=True, version="2", needs=("predictions",),
                 label="NoAns accuracy", unit="%")
def no_ans_accuracy_metric(inputs: EvalInputs) -> MetricValue:
    """Share (0-100) of unanswerable test questions answered with no answer (the official NoAns_exact)."""
    return _subset(inputs, False)


@register_metric("jaccard", task="qa", higher_is_better=True, version="1", needs=("predictions",), label="Jaccard", unit="0-1")
def jaccard_metric(inputs: EvalInputs) -> MetricValue:
    """Jaccard overlap (0-1) of normalised answer token sets, best reference."""
    preds, refs = qa_pairs(inputs)
    per = [jaccard(p, r) for p, r in zip(preds, refs, strict=True)]
    return MetricValue(sum(per) / len(per), per, has_ans_breakdown(per, refs))


@register_metric("answer_in_context", task="qa", higher_is_better=True, version="1", needs=("predictions",),
                 label="answer in context", unit="share")
def answer_in_context_metric(inputs: EvalInputs) -> MetricValue:
    """Share of answers found verbatim (normalised) in their context; abstaining counts as found."""
    preds, _ = qa_pairs(inputs)
    per = [float(answer_in_context(p, r.context or "")) for p, r in zip(preds, inputs.test, strict=True)]
    answered = [v for v, p in zip(per, preds, strict=True) if normalize_answer(p)]
    details = {"answered": len(answered), "answered_in_context": sum(answered) / len(answered) if answered else None}
    return MetricValue(sum(per) / len(per), per, details)


@register_metric("synthetic_success_rate", task="qa", higher_is_better=True, version="1", needs=("synthetic",),
                 label="valid synthetic answers", unit="synthetic, share")
def synthetic_success_rate_metric(inputs: EvalInputs) -> MetricValue:
    """Share of the answers this generation wrote (its next generation's labels) that are valid:
    found verbatim (normalised) in their own context, or an abstention (SelfPlagAI's check)."""
    records = inputs.synthetic or []
    if not records:
        raise ValueError("no synthetic records to validate")
    per = [float(answer_in_context(r.answers[0] if r.answers else "", r.context or "")) for r in records]
    abstained = sum(not r.answers for r in records)
    answered = len(records) - abstained
    found = sum(v for v, r in zip(per, records, strict=True) if r.answers)
    details = {"records": len(records), "abstained": abstained,
               "answered_in_context": found / answered if answered else None}
    return MetricValue(sum(per) / len(per), per, details)


@register_metric("answer_length", task="qa", higher_is_better=True, version="1", needs=("predictions",),
                 label="answer length", unit="words")
def answer_length_metric(inputs: EvalInputs) -> MetricValue:
    """Mean answer length in whitespace tokens (direction is nominal: compare with `reference_mean`)."""
    preds, refs = qa_pairs(inputs)
    per = [float(answer_length(p)) for p in preds]
    gold = [answer_length(r[0]) for r in refs if r]
    details = {
        "empty_rate": sum(1 for p in preds if not p.strip()) / len(preds),
        "reference_mean": sum(gold) / len(gold) if gold else None,
    }
    return MetricValue(sum(per) / len(per), per, details)


# The qa task's zero-shot baseline (tasks/qa.py): these metrics of the pretrained starting
# model's greedy answers before any fine-tuning, at generation 0, as `zero_shot_<metric>`.
ZERO_SHOT_METRICS = ("exact_match", "f1", "has_ans_f1", "no_ans_accuracy")


def _register_zero_shot(name: str) -> None:
    m = get_metric(name)  # the same number: its direction and version
    register_computed(f"zero_shot_{name}", higher_is_better=m.higher_is_better, version=m.version, label=f"zero-shot {m.label}",
                      unit=m.unit, description=f"{m.label} of the pretrained starting model before any fine-tuning (generation 0 only).",
                      computed_by="the qa task's baselines (tasks/qa.py)")


for _name in ZERO_SHOT_METRICS:
    _register_zero_shot(_name)

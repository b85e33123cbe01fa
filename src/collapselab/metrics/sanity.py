"""Sanity of a generation's synthetic data: duplicates, empties, non-ASCII, gibberish, top output.

These are the numbers that make a broken generation visible at a glance: a run where one
garbage string fills half the synthetic set shows `top_output_share` 0.5 and a high
`duplicate_rate`, whatever the other metrics say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from collapselab.datasets import DatasetError, load_splits
from collapselab.metrics.diversity import record_text, synthetic_texts
from collapselab.metrics.gibberish import CalibrationError, cached_gibberish_scorer
from collapselab.metrics.registry import (
    EvalInputs,
    MetricValue,
    TaskMetrics,
    default_metrics,
    register_metric,
)
from collapselab.records import Record

if TYPE_CHECKING:
    from collapselab.config import ExperimentConfig
    from collapselab.metrics.gibberish import GibberishScorer

# Gibberish score levels (gibberish.py): 3 human, 2.5 / 2 / 1.5 human text with 5 / 15 / 30 %
# of its words misspelt, 1 word salad, 0 random characters.
GIBBERISH_BELOW = 1.5  # under this: nearer word salad than mild gibberish
DISFLUENT_BELOW = 2.0  # under this: worse than human text with 15 % of its words misspelt
PREVIEW_CHARS = 200


def duplicate_rate(texts: Sequence[str]) -> float:
    """Share of texts that repeat an earlier text exactly: 1 - distinct / total."""
    return 1.0 - len(set(texts)) / len(texts) if texts else 0.0


def empty_rate(texts: Sequence[str]) -> float:
    """Share of texts that are empty or whitespace only."""
    return sum(1 for t in texts if not t.strip()) / len(texts) if texts else 0.0


def non_ascii_share(text: str) -> float:
    """Share of a text's characters outside ASCII (0 for the empty text)."""
    return sum(1 for ch in text if ord(ch) > 127) / len(text) if text else 0.0


def top_output(texts: Sequence[str]) -> tuple[str, int, float]:
    """The most frequent text (whitespace-trimmed), its count and its share of all texts."""
    if not texts:
        raise ValueError("no texts")
    text, count = Counter(t.strip() for t in texts).most_common(1)[0]
    return text, count, count / len(texts)


def sanity_report(texts: Sequence[str], gibberish_scores: Sequence[float] | None = None) -> dict[str, float | str]:
    """All sanity numbers of a set of texts in one flat dict."""
    text, count, share = top_output(texts)
    chars = sum(len(t) for t in texts)
    out: dict[str, float | str] = {
        "n": len(texts),
        "duplicate_rate": duplicate_rate(texts),
        "empty_rate": empty_rate(texts),
        "non_ascii_rate": sum(non_ascii_share(t) * len(t) for t in texts) / chars if chars else 0.0,
        "top_output": text[:PREVIEW_CHARS],
        "top_output_count": count,
        "top_output_share": share,
    }
    if gibberish_scores is not None:
        g = list(gibberish_scores)
        out["gibberish_rate"] = sum(1 for s in g if s < GIBBERISH_BELOW) / len(g)
        out["disfluent_rate"] = sum(1 for s in g if s < DISFLUENT_BELOW) / len(g)
        out["gibberish_score_mean"] = sum(g) / len(g)
    return out


# ---- registered metrics on inputs.synthetic -------------------------------------------


def _register(name: str, *, label: str, unit: str, higher_is_better: bool, needs: tuple[str, ...] = ("synthetic",),
              version: str = "1"):
    return register_metric(name, task="any", higher_is_better=higher_is_better, version=version, label=label, unit=unit,
                           needs=needs)


@_register("duplicate_rate", higher_is_better=False, label="duplicate rate", unit="synthetic, share")
def duplicate_rate_metric(inputs: EvalInputs) -> MetricValue:
    """Share of synthetic texts that exactly repeat an earlier one."""
    texts = synthetic_texts(inputs)
    seen: set[str] = set()
    per = []
    for t in texts:
        per.append(float(t in seen))
        seen.add(t)
    return MetricValue(duplicate_rate(texts), per)


@_register("empty_rate", higher_is_better=False, label="empty rate", unit="synthetic, share")
def empty_rate_metric(inputs: EvalInputs) -> MetricValue:
    """Share of synthetic texts that are empty or whitespace only."""
    per = [float(not t.strip()) for t in synthetic_texts(inputs)]
    return MetricValue(sum(per) / len(per), per)


@_register("non_ascii_rate", higher_is_better=False, label="non-ASCII rate", unit="synthetic, share of characters")
def non_ascii_rate_metric(inputs: EvalInputs) -> MetricValue:
    """Share of synthetic characters outside ASCII (per text in per_example; human test share in details)."""
    texts = synthetic_texts(inputs)
    chars = sum(len(t) for t in texts)
    per = [non_ascii_share(t) for t in texts]
    value = sum(p * len(t) for p, t in zip(per, texts, strict=True)) / chars if chars else 0.0
    human = "".join(record_text(r) for r in inputs.test)
    return MetricValue(value, per, {"human": non_ascii_share(human)})


@_register("top_output_share", higher_is_better=False, label="top output share", unit="synthetic, share")
def top_output_share_metric(inputs: EvalInputs) -> MetricValue:
    """Share of the synthetic set taken by its single most frequent output (shown in details)."""
    text, count, share = top_output(synthetic_texts(inputs))
    return MetricValue(share, None, {"top_output": text[:PREVIEW_CHARS], "count": count})


GIBBERISH_METRICS = ("gibberish_score", "gibberish_rate")


def gibberish_background(cfg: ExperimentConfig, task: TaskMetrics) -> list[str]:
    """The general human text the run's gibberish scorer adds to its vocabulary and word
    pairs (`evaluation.gibberish_background`, `read_background`); empty when it is null or
    no gibberish metric is computed.

    Raises:
        DatasetError: The dataset cannot be read; the message names the config key.
    """

    name = cfg.evaluation.gibberish_background
    if name is None or not set(GIBBERISH_METRICS) & set(cfg.evaluation.metrics or default_metrics(task)):
        return []
    try:
        return read_background(name)
    except DatasetError as e:
        raise DatasetError(f"evaluation.gibberish_background: {e} (null: score gibberish against the run's human text only)") from e


def read_background(name: str) -> list[str]:
    """The paragraphs of at least five words of dataset `name`'s training split (texts, or
    contexts of QA records), headings left out, each once."""

    lines = (line.strip() for r in load_splits(name).train for line in (r.text or r.context or "").split("\n"))
    return [line for line in dict.fromkeys(lines) if len(line.split()) >= 5 and not line.startswith("=")]


def scored_text(r: Record) -> str:
    """What the gibberish score grades of a record: its text (lm), else its question and first
    answer (qa). A SQuAD answer is one or two words, which the levels cannot be calibrated on
    (a one-word text is its own word salad; 5 % misspelling leaves it whole); with its question
    it is a short sentence, as the refinery's gibberish filter scores it, and an empty answer
    (SQuAD v2's "no answer") is the question alone, not the empty text's 0."""
    if r.text is not None:
        return r.text
    return f"{r.question or ''} {r.answers[0] if r.answers else ''}".strip()


def run_gibberish_scorer(human_train: Sequence[Record], test: Sequence[Record], background: Sequence[str]) -> GibberishScorer:
    """The run's scorer (cached by content hash): fitted on the human pool's texts of the kind
    scored (`scored_text`), with the QA contexts and the run's general background text for
    vocabulary and word pairs; calibrated on the held-out human test set, so 3 means "like
    the human test text" as for every other test metric.

    Raises:
        CalibrationError: the levels cannot be told apart on this data.
    """

    contexts = dict.fromkeys(r.context for r in human_train if r.text is None and r.context)
    return cached_gibberish_scorer([scored_text(r) for r in human_train], heldout_texts=[scored_text(r) for r in test],
                                   background_texts=[*background, *contexts])


def gibberish_problems(cfg: ExperimentConfig, task: TaskMetrics, human_train: Sequence[Record], test: Sequence[Record],
                       background: Sequence[str]) -> list[str]:
    """Fit the run's gibberish scorer at the start (the evaluations then read it from the
    cache): the problem, naming the run's gibberish metrics, why and what to do, when its data
    cannot calibrate it; empty when it can or the run does not score gibberish."""

    names = [n for n in cfg.evaluation.metrics or default_metrics(task) if n in GIBBERISH_METRICS]
    if not names:
        return []
    try:
        run_gibberish_scorer(human_train, test, background)
    except CalibrationError as e:
        key = "evaluation.metrics" if cfg.evaluation.metrics else f"evaluation.metrics (the {task.name} defaults)"
        return [f"{key}: {' and '.join(names)} cannot be computed on this run's data: {e}"]
    return []


def gibberish_scores(inputs: EvalInputs) -> list[float]:
    """Gibberish score of every synthetic record (`scored_text`), by the run's scorer
    (`run_gibberish_scorer`; computed once per inputs)."""
    if "gibberish_scores" not in inputs.extra:
        if not inputs.synthetic:
            raise ValueError("no synthetic records to measure")
        scorer = run_gibberish_scorer(inputs.human_train, inputs.test, inputs.background_texts)
        inputs.extra["gibberish_scores"] = scorer.scores([scored_text(r) for r in inputs.synthetic]).tolist()
        inputs.extra["gibberish_calibration"] = scorer.calibration_means()
    return inputs.extra["gibberish_scores"]


# version 2: the scorer calibrated on graded corruptions (levels above), not on two extremes;
# version 3: word order judged on pairs of frequent words only, general background text (evaluation.gibberish_background);
# version 4: a QA record scored as its question and answer, not its answer alone (see scored_text); the
#   levels' mean scores must be in order as well as their medians
@_register("gibberish_score", higher_is_better=True, needs=("synthetic", "human_train"), version="4",
           label="gibberish score", unit="synthetic, 0-3")
def gibberish_score_metric(inputs: EvalInputs) -> MetricValue:
    """Mean gibberish score (0 random characters .. 3 like the human test text) of synthetic texts."""
    per = gibberish_scores(inputs)
    return MetricValue(sum(per) / len(per), per, {"calibration_means": inputs.extra["gibberish_calibration"]})


@_register("gibberish_rate", higher_is_better=False, needs=("synthetic", "human_train"), version="4",
           label="gibberish rate", unit="synthetic, share")
def gibberish_rate_metric(inputs: EvalInputs) -> MetricValue:
    """Share of synthetic texts with gibberish score under 1.5 (nearer word salad than mild gibberish); disfluent share (under 2) in details."""
    scores = gibberish_scores(inputs)
    per = [float(s < GIBBERISH_BELOW) for s in scores]
    details = {"threshold": GIBBERISH_BELOW, "disfluent_rate": sum(s < DISFLUENT_BELOW for s in scores) / len(scores)}
    return MetricValue(sum(per) / len(per), per, details)

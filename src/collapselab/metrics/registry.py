"""One registry of metrics, each with its direction, aggregation and version.

A metric is a function of an `EvalInputs` that returns a `MetricValue`. The engine calls
`evaluate(names, inputs)` once per generation; each result carries the metric's version,
which is stored with the number so a changed implementation never mixes with old results.

A metric's `scope` says how often it is computed: "generation" (every generation, into
that generation's metrics.json) or "run" (once per run, into the run's run_metrics.json:
the fixed yardsticks, e.g. the human test set under the external reference model, which
would be the same number at every generation).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from collapselab.records import Record

Aggregation = Literal["mean", "corpus", "distribution"]
Scope = Literal["generation", "run"]


@dataclass(slots=True)
class EvalInputs:
    """Everything a metric may read for one (arm, generation).

    Fields that a task does not have stay None; a metric names what it needs in `needs`,
    and `evaluate` raises if one of them is missing instead of silently skipping it.
    """

    task: str
    test: list[Record]  # the held-out human test set
    predictions: list[str] | None = None  # qa: the model's answer to each test record, same order
    model: Any = None  # the current generation's model (HF PreTrainedModel)
    tokenizer: Any = None
    generation0_model: Any = None  # the arm's generation-0 model (scores synthetic data as in the Nature 2024 study)
    external_model: Any = None  # the run's reference: a pretrained LM independent of the arms and of generation 0 (evaluation.reference_model)
    external_tokenizer: Any = None  # its own tokenizer (not the run's)
    external_name: str | None = None  # its catalogue name or folder, recorded with every result
    external_sequences: int = 64  # most texts it scores per evaluation (a seeded sample; evaluation.reference_sequences)
    synthetic: list[Record] | None = None  # the data this generation wrote
    human_train: list[Record] | None = None  # the human training pool
    background_texts: list[str] = field(default_factory=list)  # general human text of the language (evaluation.gibberish_background)
    seq_len: int = 128  # lm: block length for perplexity
    batch_tokens: int = 16384
    device: str = "cpu"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class MetricValue:
    value: float
    per_example: list[float | None] | None = None  # one score per test (or synthetic) record; None: not scored by this metric
    details: dict[str, Any] = field(default_factory=dict)  # breakdowns, e.g. HasAns/NoAns


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    task: str  # "qa", "lm", "mcq" or "any"
    fn: Callable[[EvalInputs], MetricValue]
    higher_is_better: bool
    aggregation: Aggregation
    version: str
    needs: tuple[str, ...]
    description: str
    requires: tuple[str, ...] = ()  # importable modules of optional libraries (the `metrics` extra)
    scope: Scope = "generation"


@dataclass(frozen=True, slots=True)
class MetricResult:
    name: str
    value: float
    version: str
    higher_is_better: bool
    per_example: list[float | None] | None
    details: dict[str, Any]

    def entry(self) -> dict[str, Any]:
        """The result as one entry of metrics.json's `metrics` (`runs/metrics_file.py`)."""
        return {"value": self.value, "version": self.version, "higher_is_better": self.higher_is_better, "details": self.details}


def entries(results: dict[str, MetricResult]) -> dict[str, dict[str, Any]]:
    """Metric results in metrics.json's `metrics` shape: the one place that shape is built."""
    return {name: r.entry() for name, r in results.items()}


_REGISTRY: dict[str, Metric] = {}
# Metrics of the synthetic data a generation wrote: computed when `inputs.synthetic` is given.
SYNTHETIC_DEFAULTS: list[str] = [
    "synthetic_perplexity", "entropy", "mean_text_entropy", "distinct_1", "distinct_2", "distinct_3",
    "self_bleu", "rep_diversity", "vocabulary_size", "tail_coverage", "js_divergence", "length_mean",
    "duplicate_rate", "empty_rate", "non_ascii_rate", "top_output_share", "gibberish_score", "gibberish_rate",
]
# Encoder metrics (bertscore, semantic_similarity, mauve) are registered but not lm defaults:
# they load a sentence encoder, too slow for the CPU quickstart.
TASK_DEFAULTS: dict[str, list[str]] = {
    # (reference_perplexity, the human test set under the generation-0 model, is registered
    # but not a default: it is generation 0's own perplexity again at every generation.)
    "lm": ["perplexity", "cross_entropy", *SYNTHETIC_DEFAULTS],
    "qa": ["exact_match", "f1", "has_ans_f1", "no_ans_accuracy", "rouge1", "rouge2", "rougeL", "jaccard", "bertscore", "semantic_similarity",
           "answer_in_context", "answer_length", "synthetic_success_rate",
           # a short answer's perplexity without its question means little: not a qa default
           *(n for n in SYNTHETIC_DEFAULTS if n != "synthetic_perplexity")],
}

# Added to the lm defaults when the run has an external reference model: per generation,
# and once per run (scope "run").
EXTERNAL_DEFAULTS: list[str] = ["external_synthetic_perplexity", "external_surprisal"]
RUN_DEFAULTS: dict[str, list[str]] = {"lm": ["external_test_perplexity", "external_test_surprisal"]}


def register_metric(
    name: str,
    *,
    task: str,
    higher_is_better: bool,
    version: str,
    aggregation: Aggregation = "mean",
    needs: Sequence[str] = (),
    requires: Sequence[str] = (),
    scope: Scope = "generation",
) -> Callable[[Callable[[EvalInputs], MetricValue]], Callable[[EvalInputs], MetricValue]]:
    """Register `fn` under `name`; its docstring's first line is its description.

    `requires` names the modules of optional libraries the metric imports, so a run can
    refuse it before training when they are not installed (`missing_libraries`).
    """

    def wrap(fn: Callable[[EvalInputs], MetricValue]) -> Callable[[EvalInputs], MetricValue]:
        if name in _REGISTRY:
            raise ValueError(f"metric {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = Metric(name, task, fn, higher_is_better, aggregation, version, tuple(needs), doc[0] if doc else "",
                                 tuple(requires), scope)
        return fn

    return wrap


def get_metric(name: str) -> Metric:
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def metric_for_task(name: str, task: str) -> Metric:
    """The metric `name`, checked to apply to `task` (raises KeyError / ValueError naming it)."""
    m = get_metric(name)
    if m.task not in ("any", task):
        raise ValueError(f"{name!r} is a {m.task} metric, this is a {task} experiment")
    return m


# What installs the optional libraries of every metric (see pyproject.toml).
METRICS_EXTRA = "pip install 'collapselab[metrics]'"


def missing_libraries(names: Sequence[str]) -> list[tuple[str, str]]:
    """(metric, module) for each optional library a named metric needs that is not installed."""
    return [(n, module) for n in names for module in get_metric(n).requires if not _installed(module)]


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def all_metrics() -> dict[str, Metric]:
    return dict(_REGISTRY)


def default_metrics(task: str, inputs: EvalInputs | None = None) -> list[str]:
    """The task's default per-generation metrics; with `inputs`, only those whose needs it
    has (no synthetic-data metrics before a generation has written any), plus the external
    reference's metrics when `inputs.external_model` is set (lm)."""
    names = list(TASK_DEFAULTS[task])
    if inputs is None:
        return names
    if inputs.external_model is not None and task == "lm":
        names += EXTERNAL_DEFAULTS
    return [n for n in names if _has_needs(n, inputs)]


def run_metrics(task: str, inputs: EvalInputs) -> list[str]:
    """The metrics computed once per run (scope "run") whose needs `inputs` has."""
    return [n for n in RUN_DEFAULTS.get(task, []) if _has_needs(n, inputs)]


def _has_needs(name: str, inputs: EvalInputs) -> bool:
    return all(getattr(inputs, need) is not None for need in get_metric(name).needs)


def evaluate(names: Sequence[str], inputs: EvalInputs, *, scope: Scope = "generation") -> dict[str, MetricResult]:
    """Compute the named metrics of `scope`; raise naming the metric and the missing input."""
    out: dict[str, MetricResult] = {}
    for name in names:
        m = get_metric(name)
        if m.task not in ("any", inputs.task):
            raise ValueError(f"metric {name!r} is for task {m.task!r}, not {inputs.task!r}")
        if m.scope != scope:
            raise ValueError(f"metric {name!r} is computed once per {m.scope}, not per {scope}")
        for need in m.needs:
            if getattr(inputs, need) is None:
                raise ValueError(f"metric {name!r} needs {need!r}, which this evaluation does not have")
        v = m.fn(inputs)
        out[name] = MetricResult(name, float(v.value), m.version, m.higher_is_better, v.per_example, v.details)
    return out

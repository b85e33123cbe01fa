"""One registry of metrics, each with its direction, aggregation and version.

A metric is a function of an `EvalInputs` that returns a `MetricValue`. The engine calls
`evaluate(names, inputs)` once per generation; each result carries the metric's version,
which is stored with the number so a changed implementation never mixes with old results.

A metric's `scope` says how often it is computed: "generation" (every generation, into
that generation's metrics.json) or "run" (once per run, into the run's run_metrics.json:
the fixed yardsticks, e.g. the human test set under the external reference model, which
would be the same number at every generation).

Metrics the engine or a task computes itself, not from `EvalInputs` (MMLU accuracies, the
unigram and zero-shot baselines, the collapse stage), are registered too
(`register_computed`, families of names by pattern), so every number in metrics.json has a
registered direction, version, description and label: `entry(name, value, details)` builds
its metrics.json entry, and the report, the summary table and the dashboard name it by its
`label` and `unit` (`display`, `metric_label`).

Which metrics a task computes is the task's to say (`TaskMetrics`: its defaults, and
whether a registered metric applies to it); the registry compares no task names.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from collapselab.records import Record

Aggregation = Literal["mean", "corpus", "distribution"]
Scope = Literal["generation", "run"]


@dataclass(slots=True)
class EvalInputs:
    """Everything a metric may read for one (arm, generation).

    Fields that a task does not have stay None; a metric names what it needs in `needs`,
    and `evaluate` raises if one of them is missing instead of silently skipping it.
    """

    task: str  # the task's name, as the run's config says it
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
    task: str  # the records it reads: "qa", "lm" or "any" (data the task objects judge by, `TaskMetrics.scores`)
    fn: Callable[[EvalInputs], MetricValue]
    higher_is_better: bool
    aggregation: Aggregation
    version: str
    needs: tuple[str, ...]
    description: str
    requires: tuple[str, ...] = ()  # importable modules of optional libraries (the `metrics` extra)
    scope: Scope = "generation"
    label: str = ""  # how tables and axes name it ("EM", "perplexity")
    unit: str = ""  # what its number is ("%", "test, current model"); "" when the label says it all


@dataclass(frozen=True, slots=True)
class ComputedMetric:
    """A metric the engine or a task computes itself, not `evaluate` from `EvalInputs`.

    A family (`pattern` set) names many metrics at once, e.g. one MMLU accuracy per
    subject: `name` is how the family is written ("mmlu_accuracy.subject.<subject>"),
    `pattern` a regular expression its members' names match in full, and `label` may use
    the pattern's named groups ("MMLU accuracy, {subject}"). `metric_info` of a member gives
    the family with the member's own name and label.
    """

    name: str
    higher_is_better: bool
    version: str
    description: str
    label: str
    unit: str = ""
    computed_by: str = ""  # where the number comes from (the module or step)
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    name: str
    value: float
    version: str
    higher_is_better: bool
    per_example: list[float | None] | None
    details: dict[str, Any]

    def entry(self) -> dict[str, Any]:
        """The result as one entry of metrics.json's `metrics` (`rundir/metrics_file.py`)."""
        return entry(self.name, self.value, self.details)


def entry(name: str, value: float, details: dict[str, Any]) -> dict[str, Any]:
    """One entry of metrics.json's `metrics` for the registered metric `name` (computed by
    `evaluate` or not), its version and direction from the registry: the one place that
    shape is built.

    Raises:
        KeyError: `name` is not registered.
    """
    m = metric_info(name)
    return {"value": value, "version": m.version, "higher_is_better": m.higher_is_better, "details": details}


def entries(results: dict[str, MetricResult]) -> dict[str, dict[str, Any]]:
    """Metric results in metrics.json's `metrics` shape."""
    return {name: r.entry() for name, r in results.items()}


_REGISTRY: dict[str, Metric] = {}
_COMPUTED: dict[str, ComputedMetric] = {}  # by name; a family by how it is written
# Metrics of the synthetic data a generation wrote: computed when `inputs.synthetic` is given.
SYNTHETIC_DEFAULTS: list[str] = [
    "synthetic_perplexity", "entropy", "mean_text_entropy", "distinct_1", "distinct_2", "distinct_3",
    "self_bleu", "rep_diversity", "vocabulary_size", "tail_coverage", "js_divergence", "length_mean",
    "duplicate_rate", "empty_rate", "non_ascii_rate", "top_output_share", "gibberish_score", "gibberish_rate",
]
# The external reference's metrics (a task adds them to its defaults when the run loads
# one): per generation, and once per run (scope "run", the human yardstick).
EXTERNAL_DEFAULTS: list[str] = ["external_synthetic_perplexity", "external_surprisal"]
EXTERNAL_YARDSTICK: list[str] = ["external_test_perplexity", "external_test_surprisal"]


class TaskMetrics(Protocol):
    """What a task says about its metrics (the `Task` Protocol, `lab/contract.py`, has all of it)."""

    name: str
    default_metrics: tuple[str, ...]  # per generation, when `evaluation.metrics` is unset
    reference_metrics: tuple[str, ...]  # added to them when the run loads its external reference
    yardstick_metrics: tuple[str, ...]  # once per run under the external reference (scope "run")

    def scores(self, metric: Metric) -> bool:
        """The registered metric applies to this task's records."""
        ...


def register_metric(
    name: str,
    *,
    task: str,
    higher_is_better: bool,
    version: str,
    label: str,
    unit: str = "",
    aggregation: Aggregation = "mean",
    needs: Sequence[str] = (),
    requires: Sequence[str] = (),
    scope: Scope = "generation",
) -> Callable[[Callable[[EvalInputs], MetricValue]], Callable[[EvalInputs], MetricValue]]:
    """Register `fn` under `name`; its docstring's first line is its description.

    `task` tags the records it reads ("lm", "qa" or "any"): the task objects judge from it
    whether it applies to them (`TaskMetrics.scores`). `label` and `unit` are how tables and
    axes name it. `requires` names the modules of optional libraries the metric imports, so
    a run can refuse it before training when they are not installed (`missing_libraries`).
    """

    def wrap(fn: Callable[[EvalInputs], MetricValue]) -> Callable[[EvalInputs], MetricValue]:
        _check_new(name)
        doc = (fn.__doc__ or "").strip().splitlines()
        if not doc:
            raise ValueError(f"metric {name!r} has no docstring to describe it")
        _REGISTRY[name] = Metric(name, task, fn, higher_is_better, aggregation, version, tuple(needs), doc[0],
                                 tuple(requires), scope, label, unit)
        return fn

    return wrap


def register_computed(name: str, *, higher_is_better: bool, version: str, description: str, label: str, unit: str = "",
                      computed_by: str, pattern: str | None = None) -> None:
    """Register a metric the engine or a task computes itself (not `evaluate`), or with
    `pattern` a family of them (see `ComputedMetric`)."""
    _check_new(name)
    if pattern is not None:
        groups = set(re.compile(pattern).groupindex)
        wanted = set(re.findall(r"{(\w+)}", label))
        if not wanted <= groups:
            raise ValueError(f"metric family {name!r}: label {label!r} uses {sorted(wanted - groups)}, not groups of {pattern!r}")
    _COMPUTED[name] = ComputedMetric(name, higher_is_better, version, description, label, unit, computed_by, pattern)


def _check_new(name: str) -> None:
    if name in _REGISTRY or name in _COMPUTED:
        raise ValueError(f"metric {name!r} is registered twice")


def get_metric(name: str) -> Metric:
    """A metric `evaluate` computes (raises KeyError for any other name)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def computed_metric_names() -> list[str]:
    """The names of the metrics recorded beside `evaluate`'s (zero_shot_f1, collapse_stage,
    mmlu_accuracy ...); a family is listed as written ("mmlu_accuracy.subject.<subject>")."""
    return sorted(_COMPUTED)


def metric_info(name: str) -> Metric | ComputedMetric:
    """Any registered metric, computed by `evaluate` or not; a member of a family comes
    back as the family with the member's name and label (raises KeyError when unknown)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _COMPUTED and _COMPUTED[name].pattern is None:
        return _COMPUTED[name]
    for family in _COMPUTED.values():
        if family.pattern is not None and (match := re.fullmatch(family.pattern, name)):
            return replace(family, name=name, label=family.label.format(**match.groupdict()))
    raise KeyError(f"unknown metric {name!r}; known: {sorted([*_REGISTRY, *_COMPUTED])}")


def display(name: str) -> tuple[str, str]:
    """(label, unit) of a metric for tables and axes; a name the registry does not know (a
    run recorded by another version of collapselab) shows as itself, with no unit."""
    try:
        m = metric_info(name)
    except KeyError:
        return name, ""
    return m.label, m.unit


def metric_label(name: str) -> str:
    """A metric's label with its unit, "perplexity (test, current model)" (see `display`)."""
    label, unit = display(name)
    return f"{label} ({unit})" if unit else label


def metric_for_task(name: str, task: TaskMetrics) -> Metric:
    """The metric `name`, checked to apply to `task` (raises KeyError / ValueError naming it)."""
    m = get_metric(name)
    if not task.scores(m):
        raise ValueError(f"{name!r} is a {m.task} metric, this is a {task.name} experiment")
    return m


# What installs the optional libraries of every metric (see pyproject.toml).
METRICS_EXTRA = "pip install 'collapselab[metrics]'"


def missing_libraries(names: Sequence[str]) -> list[tuple[str, str]]:
    """(metric, module) for each optional library a named metric needs that is not installed."""
    return [(n, module) for n in names for module in get_metric(n).requires if not _installed(module)]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def all_metrics() -> dict[str, Metric]:
    """The metrics `evaluate` computes."""
    return dict(_REGISTRY)


def computed_metrics() -> dict[str, ComputedMetric]:
    """The metrics (and families) the engine and the tasks compute themselves."""
    return dict(_COMPUTED)


def default_metrics(task: TaskMetrics, inputs: EvalInputs | None = None) -> list[str]:
    """The task's default per-generation metrics; with `inputs`, only those whose needs it
    has (no synthetic-data metrics before a generation has written any), plus the task's
    external reference metrics when `inputs.external_model` is set."""
    names = list(task.default_metrics)
    if inputs is None:
        return names
    if inputs.external_model is not None:
        names += task.reference_metrics
    return [n for n in names if _has_needs(n, inputs)]


def run_metrics(task: TaskMetrics, inputs: EvalInputs) -> list[str]:
    """The task's metrics computed once per run (scope "run") whose needs `inputs` has."""
    return [n for n in task.yardstick_metrics if _has_needs(n, inputs)]


def _has_needs(name: str, inputs: EvalInputs) -> bool:
    return all(getattr(inputs, need) is not None for need in get_metric(name).needs)


def evaluate(names: Sequence[str], inputs: EvalInputs, *, scope: Scope = "generation") -> dict[str, MetricResult]:
    """Compute the named metrics of `scope`; raise naming the metric and the missing input.
    (Whether a metric applies to the run's task is the task's to check: `metric_for_task`.)"""
    out: dict[str, MetricResult] = {}
    for name in names:
        m = get_metric(name)
        if m.scope != scope:
            raise ValueError(f"metric {name!r} is computed once per {m.scope}, not per {scope}")
        for need in m.needs:
            if getattr(inputs, need) is None:
                raise ValueError(f"metric {name!r} needs {need!r}, which this evaluation does not have")
        v = m.fn(inputs)
        out[name] = MetricResult(name, float(v.value), m.version, m.higher_is_better, v.per_example, v.details)
    return out

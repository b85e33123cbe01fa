"""Collapse metrics: a registry (`registry.py`) and one module per family.

Importing this package registers every built-in metric (each family module registers its
own on import, those computed outside `evaluate` too: MMLU, the baselines, the collapse
stage), so `get_metric` and `metric_info` always see them; the registry itself imports no
family.
"""

# The families register themselves; the registry above must be imported first.
from collapselab.metrics import cloze, diversity, external, language, mmlu, overlap, qa, sanity, semantic, stages  # noqa: E402, F401, I001
from collapselab.metrics.registry import (
    EvalInputs,
    MetricResult,
    MetricValue,
    all_metrics,
    default_metrics,
    entry,
    evaluate,
    get_metric,
    metric_for_task,
    metric_info,
    register_metric,
)

__all__ = [
    "EvalInputs", "MetricResult", "MetricValue", "all_metrics", "default_metrics", "entry",
    "evaluate", "get_metric", "metric_for_task", "metric_info", "register_metric",
]

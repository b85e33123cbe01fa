"""Collapse metrics: a registry (`registry.py`) and one module per family.

Importing this package registers every built-in metric (each family module registers its
own on import), so `get_metric` always sees them; the registry itself imports no family.
"""

# The families register themselves; the registry above must be imported first.
from collapselab.metrics import diversity, external, language, overlap, qa, sanity, semantic  # noqa: E402, F401, I001
from collapselab.metrics.registry import (
    EvalInputs,
    MetricResult,
    MetricValue,
    all_metrics,
    default_metrics,
    evaluate,
    get_metric,
    metric_for_task,
    register_metric,
)

__all__ = [
    "EvalInputs", "MetricResult", "MetricValue", "all_metrics", "default_metrics",
    "evaluate", "get_metric", "metric_for_task", "register_metric",
]

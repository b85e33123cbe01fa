"""Collapse metrics: a registry (`registry.py`) and one module per family."""

from collapselab.metrics.registry import (
    EvalInputs,
    MetricResult,
    MetricValue,
    all_metrics,
    default_metrics,
    evaluate,
    get_metric,
    register_metric,
)

__all__ = [
    "EvalInputs", "MetricResult", "MetricValue", "all_metrics", "default_metrics",
    "evaluate", "get_metric", "register_metric",
]

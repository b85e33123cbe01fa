"""The data refinery: builders of AI-contaminated and synthetic-from-human data, and the
quality filters that synthetic data passes through (each with a reason code).

- `builders.build_arm_data`: the engine's entry point for generation 0 of a
  `contaminated` or `synthetic` arm;
- `strategies`: prompts and the four synthesis strategies;
- `filters`: one function per filter, one reason code each; `pipeline.run_filters`
  applies them in configured order and keeps the rejected records with their reasons.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BuiltData", "build_arm_data"]


def __getattr__(name: str) -> Any:
    # Lazy: collapselab.config imports refinery.config, and builders import the tasks
    # (which import collapselab.config), so importing builders here would be circular.
    if name in __all__:
        from collapselab.refinery import builders

        return getattr(builders, name)
    raise AttributeError(f"module 'collapselab.refinery' has no attribute {name!r}")

"""The data refinery: builders of AI-contaminated and synthetic-from-human data, and the
quality filters that synthetic data passes through (each with a reason code).

- `builders.build_arms_data`: the engine's entry point for generation 0 of the
  `contaminated` and `synthetic` arms of a seed (one generator load for all of them;
  `build_arm_data` for one arm); `write_with_generator`: the same generator writing an
  arm's synthetic data in the loop (`arms[].writer: generator`);
- `strategies`: prompts and the four synthesis strategies;
- `filters`: one function per filter, one reason code each; `pipeline.run_filters`
  applies them in configured order and keeps the rejected records with their reasons;
- `verifier.verified`: the engine's entry point for `arms[].verify`, the filters on what
  every generation wrote before the next generation's mix draws on it.
"""

from __future__ import annotations

from collapselab.refinery.builders import (
    BuiltData,
    build_arm_data,
    build_arms_data,
    generator_name,
    write_with_generator,
)

__all__ = ["BuiltData", "build_arm_data", "build_arms_data", "generator_name", "write_with_generator"]

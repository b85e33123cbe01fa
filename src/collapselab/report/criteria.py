"""The three-arm success criteria: does filtered synthetic-from-human data (C) recover what
AI-contaminated data (B) loses against human data (A)?

- C > B and |C - A| <= tolerance, on the means over seeds of the configured metric, with
  95 % confidence intervals over seeds (t distribution) beside them;
- recovery = (C - B) / (A - B): 1 means C is as good as human data, 0 as bad as
  contaminated data; undefined when A = B (nothing was lost to recover);
- paired bootstrap over test questions (every seed's questions pooled, pairs matched by
  seed and question) of C - B and C - A on the per-example scores: an interval that
  does not need several seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

from collapselab.metrics.stats import BootstrapResult, Summary, paired_bootstrap, summarize
from collapselab.results import RunData


@dataclass(frozen=True, slots=True)
class Criteria:
    metric: str
    tolerance: float
    a: Summary
    b: Summary
    c: Summary
    recovery: float | None
    c_beats_b: bool
    c_near_a: bool
    c_minus_b: BootstrapResult | None
    c_minus_a: BootstrapResult | None


def per_example(run: RunData, arm: str, metric: str) -> dict[tuple[int, str], float]:
    """(seed, example id) -> the example's score at the final generation."""
    out = {}
    for g in run.final(arm):
        for row in run.predictions(g):
            v = row["scores"].get(metric)
            if v is not None:
                out[(g.seed, row["example_id"])] = float(v)
    return out


def paired(run: RunData, x: str, y: str, metric: str) -> BootstrapResult | None:
    """Paired bootstrap of x - y on the per-example `metric` at the final generation, pairs
    matched by seed and example (None when no example has both)."""
    px, py = per_example(run, x, metric), per_example(run, y, metric)
    keys = sorted(px.keys() & py.keys())
    return paired_bootstrap([px[k] for k in keys], [py[k] for k in keys], n=2000) if keys else None


def three_arm_criteria(run: RunData) -> Criteria:
    roles = run.three_arm
    if roles is None:
        raise ValueError("three_arm_criteria: the run has no human, contaminated and synthetic arms")
    success = run.cfg.refinery.success
    m, last = success.metric, run.last_generation
    a, b, c = (summarize(run.values(roles[k], last, m)) for k in ("human", "contaminated", "synthetic"))
    recovery = (c.mean - b.mean) / (a.mean - b.mean) if a.mean != b.mean else None
    return Criteria(
        m, success.tolerance, a, b, c, recovery, c.mean > b.mean, abs(c.mean - a.mean) <= success.tolerance,
        paired(run, roles["synthetic"], roles["contaminated"], m), paired(run, roles["synthetic"], roles["human"], m),
    )

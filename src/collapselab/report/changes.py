"""What a run's numbers say, computed once for the report's headline, Findings and
Limitations: each arm's change of a metric from generation 0 to the last generation (per
seed and over seeds), how fine a difference the test set resolves, and the size of the
trained model. Every number here comes from the run's metrics, predictions and model files.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from math import prod

from collapselab.metrics.registry import display, metric_info
from collapselab.metrics.stats import Summary, summarize
from collapselab.report.outcomes import fmt
from collapselab.results import RunData


@dataclass(frozen=True, slots=True)
class Change:
    """One arm's `metric` at generation 0 and at the run's last generation."""

    arm: str
    metric: str
    first: Summary  # generation 0, over seeds
    last: Summary  # the last generation, over seeds
    delta: Summary  # last minus first of each seed, over the seeds that have both
    higher_is_better: bool

    @property
    def relative(self) -> float | None:
        """The change of the mean in percent of generation 0's (None when that is 0)."""
        return None if self.first.mean == 0 else 100.0 * (self.last.mean - self.first.mean) / abs(self.first.mean)

    @property
    def worse(self) -> bool:
        return self.delta.mean < 0 if self.higher_is_better else self.delta.mean > 0

    @property
    def interval(self) -> bool:
        """There is a 95 % interval of the change over seeds (two seeds or more)."""
        return self.delta.n > 1

    @property
    def excludes_zero(self) -> bool:
        """The 95 % interval of the change over seeds excludes 0 (False with one seed)."""
        return self.interval and (self.delta.ci_low > 0 or self.delta.ci_high < 0)


def changes(run: RunData, metric: str) -> list[Change]:
    """Each arm's change of `metric` from generation 0 to the last generation, arms in the
    run's order; arms missing either end are left out ([] for a one-generation run)."""
    if run.last_generation == 0:
        return []
    better = metric_info(metric).higher_is_better
    out = []
    for arm in run.arms:
        first = {g.seed: g.metrics.get(metric) for g in run.find(arm, 0)}
        last = {g.seed: g.metrics.get(metric) for g in run.final(arm)}
        seeds = sorted(s for s in first.keys() & last.keys() if first[s] is not None and last[s] is not None)
        if seeds:
            out.append(Change(arm, metric, summarize([first[s] for s in seeds]), summarize([last[s] for s in seeds]),
                              summarize([last[s] - first[s] for s in seeds]), better))
    return out


@dataclass(frozen=True, slots=True)
class Resolution:
    """How finely the held-out test set measures `metric`: the 95 % interval of a mean
    over its examples, from generation 0's per-example scores (first arm, first seed)."""

    metric: str
    examples: int
    mean: float  # mean per-example value
    half_width: float  # of the 95 % interval of that mean (t distribution)

    @property
    def points(self) -> bool:
        """The metric is a percentage (EM, F1): its resolution is in points, not relative."""
        return display(self.metric)[1] == "%"

    @property
    def relative(self) -> float:
        """The half-width in percent of the mean per-example value."""
        return 100.0 * self.half_width / abs(self.mean) if self.mean else float("inf")

    def text(self) -> str:
        """"±4.20 points" for a percentage, else "±3.1 %" (relative)."""
        return f"±{fmt(self.half_width)} points" if self.points else f"±{fmt(self.relative, 1)} %"


def resolution(run: RunData, metric: str) -> Resolution | None:
    """The test set's resolution of `metric`; None when its per-example scores were not kept
    or it has fewer than two examples."""
    first = [g for g in run.find(run.arms[0], 0) if g.seed == run.seeds[0]]
    if not first:
        return None
    values = [float(v) for row in run.predictions(first[0]) if (v := row["scores"].get(metric)) is not None]
    if len(values) < 2:
        return None
    s = summarize(values)
    return Resolution(metric, len(values), s.mean, s.ci_high - s.mean)


def beyond_noise(change: Change, res: Resolution | None) -> bool | None:
    """The change is more than noise: its interval over seeds excludes 0 (two seeds or
    more), or with one seed it is larger than the test set resolves. None when neither
    can be told (one seed, no per-example scores)."""
    if change.interval:
        return change.excludes_zero
    if res is None:
        return None
    if res.points:
        return abs(change.delta.mean) > res.half_width
    return None if change.relative is None else abs(change.relative) > res.relative


def verdict(change: Change, res: Resolution | None) -> str:
    """One word for an arm's change: collapsed (worse beyond noise), improved (better beyond
    noise), or held (within noise, or no way to tell)."""
    beyond = beyond_noise(change, res)
    if beyond:
        return "collapsed" if change.worse else "improved"
    return "held"


def model_parameters(run: RunData) -> int | None:
    """Parameters of the trained model (the first arm's generation 0, first seed), counted
    from its safetensors files' headers; None when its weights are not in the run folder."""
    found = [g for g in run.find(run.arms[0], 0) if g.seed == run.seeds[0]]
    if not found:
        return None
    files = sorted(found[0].files.model.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for path in files:
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))  # the header: little-endian length, then JSON
            header = json.loads(f.read(size))
        total += sum(prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    return total

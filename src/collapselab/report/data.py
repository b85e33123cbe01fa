"""What is the report's own in reading a run: the per-sequence values behind the perplexity
histograms, and the histograms (the dashboard draws the same figure). Reading a run itself
is `collapselab.results`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collapselab.results import RunData

# Texts a generation needs (seeds pooled) before its per-sequence histogram is drawn: with
# 30 bins, a few dozen texts leave most bins at 0 or 1 and the shape is noise.
MIN_HISTOGRAM_TEXTS = 100


@dataclass(frozen=True, slots=True)
class Histograms:
    edges: list[float]  # bin edges shared by every generation, log-spaced
    share: dict[int, list[float]]  # generation -> share of its sequences in each bin (sums to 1)
    counts: dict[int, int]  # generation -> sequences
    reference: list[float] | None = None  # the human texts' shares on the same bins, when given


def perplexity_histograms(by_generation: dict[int, Sequence[float]], bins: int = 30,
                          reference: Sequence[float] | None = None) -> Histograms:
    """Histograms of per-sequence perplexity per generation on one set of log-spaced bins:
    the Nature 2024 figure (Shumailov et al., Fig. 1b), overlaid. Shares rather than counts,
    so generations of different sizes compare; a perplexity is at least 1. `reference` (the
    human test texts under the same model) is binned on the same edges."""
    import numpy as np

    series = [*by_generation.values(), *([reference] if reference else [])]
    pooled = np.concatenate([np.asarray(v, dtype=np.float64) for v in series if len(v)] or [np.ones(1)])
    pooled = pooled[np.isfinite(pooled)] if np.isfinite(pooled).any() else np.ones(1)
    lo, hi = max(1.0, float(pooled.min())), max(float(pooled.max()), 1.0 + 1e-9)
    edges = np.geomspace(lo, hi * (1 + 1e-9), bins + 1) if hi > lo else np.array([lo, lo + 1.0])
    share, counts = {}, {}
    for g, values in sorted(by_generation.items()):
        x = np.clip(np.asarray(values, dtype=np.float64), edges[0], edges[-1])
        hist = np.histogram(x, bins=edges)[0]
        share[g] = (hist / max(1, x.size)).tolist()
        counts[g] = int(x.size)
    ref = None
    if reference:
        x = np.clip(np.asarray(reference, dtype=np.float64), edges[0], edges[-1])
        ref = (np.histogram(x, bins=edges)[0] / max(1, x.size)).tolist()
    return Histograms(edges.tolist(), share, counts, ref)


def per_sequence_values(run: RunData, arm: str, metric: str) -> dict[int, list[float]]:
    """generation -> the per-sequence values of `metric`, pooled over seeds: those of a sample
    kept in its details (the external reference's), else every synthetic record's score in
    synthetic_scores.parquet (the generation-0 model's); generations without them are left out."""
    out: dict[int, list[float]] = {}
    for g in sorted(run.gens, key=lambda x: (x.generation, x.seed)):
        if g.arm != arm or metric not in g.doc["metrics"]:
            continue
        values = (g.doc["metrics"][metric].get("details") or {}).get("per_sequence")
        if values is None:
            values = [s[metric] for s in run.synthetic_scores(g).values() if s.get(metric) is not None]
        if values:
            out.setdefault(g.generation, []).extend(values)
    return out

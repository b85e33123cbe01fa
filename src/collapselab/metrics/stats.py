"""Statistics across seeds and between arms: mean, std, 95 % CI, paired bootstrap test.

- `summarize(values)`: mean, sample standard deviation (ddof=1) and the two-sided 95 %
  confidence interval of the mean from the t distribution with n-1 degrees of freedom.
- `paired_bootstrap(a, b)`: per-example scores of two systems on the same examples
  (two arms, or two generations). The examples are resampled with replacement; the CI is
  the 2.5-97.5 percentile interval of the resampled mean differences, and the two-sided
  p-value tests "no difference" by centring the bootstrap distribution on zero
  (Efron & Tibshirani 1993, ch. 16): p = (1 + #{|d* - d| >= |d|}) / (1 + n).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Summary:
    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    difference: float  # mean(a) - mean(b)
    ci_low: float
    ci_high: float
    p_value: float
    n_resamples: int


def summarize(values: Sequence[float]) -> Summary:
    """Mean, std and t-based 95 % CI of values from several seeds (CI is the mean for n = 1)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("summarize needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return Summary(mean, 0.0, mean, mean, 1)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.975, df=x.size - 1)) * std / np.sqrt(x.size)
    return Summary(mean, std, mean - half, mean + half, int(x.size))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n: int = 10_000, seed: int = 0,
                     chunk: int = 1000) -> BootstrapResult:
    """Paired bootstrap of mean(a) - mean(b) over the same examples."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired scores must be two equal-length non-empty lists, got {x.shape} and {y.shape}")
    d = x - y
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(n)
    for start in range(0, n, chunk):  # (chunk, N) index matrices keep memory bounded
        k = min(chunk, n - start)
        means[start : start + k] = d[rng.integers(0, d.size, size=(k, d.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    extreme = int(np.sum(np.abs(means - observed) >= abs(observed)))
    return BootstrapResult(observed, float(lo), float(hi), (extreme + 1) / (n + 1), n)

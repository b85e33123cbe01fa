"""The report's PNG plots: labelled axes with units, legends, values a person reads at a glance.

Every function takes ready numbers (no run-directory reading here) and writes one PNG.
Error bars and bands are 95 % confidence intervals over seeds (t distribution); with one
seed there is no interval and none is drawn. A panel whose values are all equal says "no
difference" instead of stretching its axis over rounding noise, and a reference line far
from the data (a unigram baseline at 395 beside curves near 55) is named at the axis edge
instead of squashing the curves. Colours come from `palette.py`, which the dashboard uses too.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from collapselab.metrics.stats import Summary  # noqa: E402
from collapselab.report.palette import COLORS, NEUTRAL, generation_colors  # noqa: E402

__all__ = ["COLORS", "DPI", "all_equal", "bar_comparison", "grouped_bars", "loss_curves", "per_generation",
           "rejection_bars", "sequence_histograms", "split_references"]

DPI = 110
# A reference line is drawn when it lies within this many data spans of the data; further
# out it would squash the curves, so it is named at the axis edge instead.
REFERENCE_REACH = 1.0


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def all_equal(values: Sequence[float], rel: float = 1e-9) -> bool:
    """True when the values differ by no more than rounding (relative to their size)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    return len(v) > 0 and float(np.ptp(v)) <= rel * max(1.0, float(np.abs(v).max()))


def _no_difference(ax, value: float) -> None:
    ax.text(0.5, 0.5, f"no difference\n(every value is {value:,.4g})", transform=ax.transAxes, ha="center", va="center",
            fontsize=11, color="#555555")
    ax.set_yticks([])


def _yerr(summaries: Sequence[Summary]) -> np.ndarray | None:
    """Error bars of the 95 % CIs over seeds; None (no bars) when no value has two seeds."""
    if all(s.n < 2 for s in summaries):
        return None
    return np.array([[s.mean - s.ci_low for s in summaries], [s.ci_high - s.mean for s in summaries]])


def bar_comparison(arms: list[str], summaries: list[Summary], ylabel: str, title: str, path: Path,
                   colors: dict[str, str]) -> Path:
    """One bar per arm (mean over seeds, 95 % CI error bars with two seeds or more), each
    bar labelled with its value; `colors` maps every arm to its colour (`palette.arm_colors`)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = np.arange(len(arms))
    bars = ax.bar(x, [s.mean for s in summaries], yerr=_yerr(summaries), capsize=6, color=[colors[a] for a in arms])
    for b, s in zip(bars, summaries, strict=True):
        ax.annotate(f"{s.mean:.2f}", (b.get_x() + b.get_width() / 2, s.ci_high), ha="center", va="bottom",
                    xytext=(0, 3), textcoords="offset points", fontsize=10)
    ax.set_xticks(x, arms)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.set_ylim(0, max([s.ci_high for s in summaries] + [1e-9]) * 1.18)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def grouped_bars(groups: list[str], arms: list[str], values: dict[str, list[Summary]], ylabel: str, title: str,
                 path: Path, colors: dict[str, str], zero_line: bool = False) -> Path:
    """Bars grouped by metric (x axis), one colour per arm, 95 % CI error bars with two seeds or more."""
    fig, ax = plt.subplots(figsize=(max(6.4, 1.3 * len(groups) + 2), 4.2))
    x = np.arange(len(groups))
    width = 0.8 / max(1, len(arms))
    flat = [v for arm in arms for s in values[arm] for v in (s.mean, s.ci_low, s.ci_high)]
    if all_equal(flat):
        _no_difference(ax, flat[0])
        ax.set_xticks(x, groups)
        ax.set_title(title)
        return _save(fig, path)
    for i, arm in enumerate(arms):
        s = values[arm]
        ax.bar(x + (i - (len(arms) - 1) / 2) * width, [v.mean for v in s], width, yerr=_yerr(s), capsize=3,
               label=arm, color=colors[arm])
    if zero_line:
        ax.axhline(0, color="black", linewidth=0.8)
        ax.margins(y=0.12)  # keep the zero line off the frame when every bar is on one side
    ax.set_xticks(x, groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="arm", fontsize=9)
    return _save(fig, path)


def per_generation(panels: list[tuple[str, str, str]], series: dict[str, dict[str, list[Summary | None]]],
                   generations: list[int], title: str, path: Path, colors: dict[str, str],
                   references: dict[str, list[tuple[str, float]]] | None = None) -> Path:
    """Small multiples: one panel per metric (metric, panel title, y label), value per
    generation per arm with a shaded 95 % CI band over seeds (two seeds or more);
    `references[metric]` adds labelled dashed lines (a fixed yardstick or a baseline
    measured once, not a curve), or names one at the axis edge when drawing it would squash
    the curves. One legend, naming every arm, above the panels."""
    n = len(panels)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows + 0.5), squeeze=False)
    drawn_arms: dict[str, object] = {}
    for k, (name, panel_title, ylabel) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        drawn = [s.mean for by_gen in series[name].values() for s in by_gen if s is not None]
        refs = (references or {}).get(name, [])
        if all_equal(drawn) and not refs:
            _no_difference(ax, drawn[0])
        else:
            for arm, by_gen in series[name].items():
                pts = [(g, s) for g, s in zip(generations, by_gen, strict=True) if s is not None]
                if not pts:
                    continue
                g = [p[0] for p in pts]
                (line,) = ax.plot(g, [p[1].mean for p in pts], marker="o", color=colors[arm], label=arm)
                drawn_arms.setdefault(arm, line)
                if any(p[1].n > 1 for p in pts):
                    ax.fill_between(g, [p[1].ci_low for p in pts], [p[1].ci_high for p in pts], color=colors[arm], alpha=0.15)
            _references(ax, refs, [v for by_gen in series[name].values() for s in by_gen if s is not None
                                   for v in ((s.ci_low, s.ci_high) if s.n > 1 else (s.mean,))])
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("generation")
        ax.set_ylabel("\n".join(textwrap.wrap(ylabel, 28)), fontsize=8.5)
        ax.set_xticks(generations)
        ax.grid(alpha=0.3)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title)
    if drawn_arms:
        fig.legend(list(drawn_arms.values()), list(drawn_arms), title="arm", loc="upper right", ncols=min(4, len(drawn_arms)),
                   fontsize=8, title_fontsize=8, frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0, 1, 0.93 if rows == 1 else 0.96))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def split_references(references: list[tuple[str, float]], data: Sequence[float]) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(drawn, named at the edge): a reference within `REFERENCE_REACH` data spans of the
    data is drawn as a line; one further out would squash the curves (a unigram perplexity
    of 395 beside curves near 55), so it is only named."""
    values = [v for v in data if np.isfinite(v)]
    if not values:
        return list(references), []
    lo, hi = min(values), max(values)
    span = max(hi - lo, 0.05 * max(abs(lo), abs(hi)), 1e-9)
    near = [(label, v) for label, v in references if lo - REFERENCE_REACH * span <= v <= hi + REFERENCE_REACH * span]
    return near, [r for r in references if r not in near]


def _references(ax, references: list[tuple[str, float]], data: list[float]) -> None:
    """Dashed lines for the references within reach of the data; the others named at the
    top or bottom edge with their value, the axis kept on the data and the lines drawn."""
    near, far = split_references(references, data)
    for j, (label, value) in enumerate(near):
        ax.axhline(value, color=NEUTRAL, linestyle=(0, (4, 2 + 2 * j)), linewidth=1.1)
        ax.annotate(f"{label}: {value:,.4g}", (0.01, value), xycoords=("axes fraction", "data"), fontsize=7.5,
                    va="bottom", color=NEUTRAL)
    if not far:
        return
    shown = [v for v in data if np.isfinite(v)] + [v for _, v in near]
    lo, hi = min(shown), max(shown)
    pad = 0.12 * max(hi - lo, 0.05 * max(abs(lo), abs(hi)), 1e-9)
    ax.set_ylim(lo - pad, hi + pad)
    above = [r for r in far if r[1] > hi]
    below = [r for r in far if r[1] < lo]
    for i, (label, value) in enumerate(above):
        ax.annotate(f"↑ {label}: {value:,.4g} (above this axis)", (0.99, 0.97 - 0.08 * i), xycoords="axes fraction",
                    ha="right", va="top", fontsize=7.5, color=NEUTRAL)
    for i, (label, value) in enumerate(below):
        ax.annotate(f"↓ {label}: {value:,.4g} (below this axis)", (0.99, 0.03 + 0.08 * i), xycoords="axes fraction",
                    ha="right", va="bottom", fontsize=7.5, color=NEUTRAL)


def sequence_histograms(panels: dict[str, tuple[np.ndarray, dict[int, np.ndarray], np.ndarray | None]], xlabel: str,
                        title: str, path: Path, reference_label: str = "human test text") -> Path:
    """One panel per arm: the share of texts per log-spaced bin of a per-sequence value, one
    step line per generation (later generations darker, `palette.generation_colors`), the
    reference as a dashed line."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.6), squeeze=False)
    for ax, (arm, (edges, shares, reference)) in zip(axes[0], panels.items(), strict=True):
        shade = generation_colors(list(shares))
        for g in sorted(shares):
            ax.stairs(shares[g], edges, color=shade[g], linewidth=1.5, label=f"generation {g}")
        if reference is not None:
            ax.stairs(reference, edges, color=NEUTRAL, linestyle="--", linewidth=1.2, label=reference_label)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of texts")
        ax.set_title(f"arm {arm}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5)
    fig.suptitle(title)
    return _save(fig, path)


def loss_curves(curves: dict[tuple[str, int], list[float]], title: str, path: Path, colors: dict[str, str]) -> Path:
    """Training loss per optimizer step, one line per (arm, generation): the arm's colour,
    solid for its first generation, dashed for its last."""
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    first = min(g for _, g in curves)
    for (arm, g), losses in curves.items():
        ax.plot(np.arange(1, len(losses) + 1), losses, color=colors[arm], linestyle="-" if g == first else "--",
                label=f"{arm}, generation {g}", linewidth=1.4)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (cross-entropy, nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def rejection_bars(labels: list[str], passed: list[int], rejected: list[dict[str, int]], title: str, path: Path) -> Path:
    """One horizontal bar per refinery build: passed records plus rejections stacked by reason."""
    reasons = sorted({r for d in rejected for r in d})
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.6 * len(labels)))
    y = np.arange(len(labels))
    left = np.array(passed, dtype=float)
    ax.barh(y, left, color="#2e933c", label="passed")
    for i, reason in enumerate(reasons):
        counts = np.array([d.get(reason, 0) for d in rejected], dtype=float)
        ax.barh(y, counts, left=left, color=COLORS[(i + 3) % len(COLORS)], label=f"rejected: {reason}")
        left += counts
    ax.set_yticks(y, labels)
    ax.set_xlabel("candidate records (count)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)

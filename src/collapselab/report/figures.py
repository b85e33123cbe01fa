"""The report's PNG plots: labelled axes with units, legends, values a person reads at a glance.

Every function takes ready numbers (no run-directory reading here) and writes one PNG.
Error bars and bands are 95 % confidence intervals over seeds (t distribution); with one
seed there is no interval and the figure says so in its caption. A panel whose values are
all equal says "no difference" instead of stretching its axis over rounding noise.
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

COLORS = ["#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6e63", "#444444"]
DPI = 110


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


def _yerr(summaries: Sequence[Summary]) -> np.ndarray:
    return np.array([[s.mean - s.ci_low for s in summaries], [s.ci_high - s.mean for s in summaries]])


def bar_comparison(arms: list[str], summaries: list[Summary], ylabel: str, title: str, path: Path) -> Path:
    """One bar per arm (mean over seeds, 95 % CI error bars), each bar labelled with its value."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = np.arange(len(arms))
    bars = ax.bar(x, [s.mean for s in summaries], yerr=_yerr(summaries), capsize=6,
                  color=[COLORS[i % len(COLORS)] for i in range(len(arms))])
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
                 path: Path, zero_line: bool = False) -> Path:
    """Bars grouped by metric (x axis), one colour per arm, 95 % CI error bars."""
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
               label=arm, color=COLORS[i % len(COLORS)])
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
                   generations: list[int], title: str, path: Path,
                   references: dict[str, list[tuple[str, float]]] | None = None) -> Path:
    """Small multiples: one panel per metric (metric, panel title, y label), value per
    generation per arm with a shaded 95 % CI band over seeds; `references[metric]` adds
    labelled dashed lines (a fixed yardstick or a baseline measured once, not a curve)."""
    n = len(panels)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.3 * rows), squeeze=False)
    for k, (name, panel_title, ylabel) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        drawn = [s.mean for by_gen in series[name].values() for s in by_gen if s is not None]
        if all_equal(drawn) and not (references or {}).get(name):
            _no_difference(ax, drawn[0])
        else:
            for i, (arm, by_gen) in enumerate(series[name].items()):
                pts = [(g, s) for g, s in zip(generations, by_gen, strict=True) if s is not None]
                if not pts:
                    continue
                g = [p[0] for p in pts]
                c = COLORS[i % len(COLORS)]
                ax.plot(g, [p[1].mean for p in pts], marker="o", color=c, label=arm)
                ax.fill_between(g, [p[1].ci_low for p in pts], [p[1].ci_high for p in pts], color=c, alpha=0.15)
            for j, (label, value) in enumerate((references or {}).get(name, [])):
                ax.axhline(value, color="#333333", linestyle=(0, (4, 2 + 2 * j)), linewidth=1.1)
                ax.annotate(f"{label}: {value:,.4g}", (0.01, value), xycoords=("axes fraction", "data"), fontsize=7.5,
                            va="bottom", color="#333333")
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("generation")
        ax.set_ylabel("\n".join(textwrap.wrap(ylabel, 28)), fontsize=8.5)
        ax.set_xticks(generations)
        ax.grid(alpha=0.3)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].axis("off")
    if axes[0][0].get_legend_handles_labels()[0]:
        axes[0][0].legend(title="arm", fontsize=8, title_fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


def sequence_histograms(panels: dict[str, tuple[np.ndarray, dict[int, np.ndarray], np.ndarray | None]], xlabel: str,
                        title: str, path: Path, reference_label: str = "human test text") -> Path:
    """One panel per arm: the share of texts per log-spaced bin of a per-sequence value, one
    step line per generation (later generations darker), the reference as a dashed line."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.6), squeeze=False)
    for ax, (arm, (edges, shares, reference)) in zip(axes[0], panels.items(), strict=True):
        gens = sorted(shares)
        cmap = plt.get_cmap("viridis")
        for k, g in enumerate(gens):
            ax.stairs(shares[g], edges, color=cmap(0.85 * (1 - k / max(1, len(gens) - 1))), linewidth=1.5, label=f"generation {g}")
        if reference is not None:
            ax.stairs(reference, edges, color="#333333", linestyle="--", linewidth=1.2, label=reference_label)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("share of texts")
        ax.set_title(f"arm {arm}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7.5)
    fig.suptitle(title)
    return _save(fig, path)


def loss_curves(curves: dict[str, list[float]], title: str, path: Path) -> Path:
    """Training loss per optimizer step, one line per (arm, generation)."""
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for i, (label, losses) in enumerate(curves.items()):
        ax.plot(np.arange(1, len(losses) + 1), losses, color=COLORS[i % len(COLORS)], label=label, linewidth=1.4)
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

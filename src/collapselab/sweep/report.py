"""The sweep report: every trial's final metrics in one table, and the main metric against the
swept key with 95 % CIs over seeds. Written with the report's own Document (report.md and a
self-contained report.html), to `<sweep folder>/report/` by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collapselab.metrics.registry import metric_label
from collapselab.metrics.stats import summarize
from collapselab.records import atomic_write_text
from collapselab.report import ReportPaths
from collapselab.report.document import Document, Figure, Heading, Para, Table
from collapselab.sweep.compare import (
    TrialResult,
    comparison_rows,
    from_folder,
    grid_keys,
    metric_by_key,
    read_plan,
    swept_key,
)


def write_sweep_report(folder: Path, out_dir: Path | None = None, metric: str | None = None):
    """Write report.md, report.html and figures/ comparing the trials of the sweep in `folder`.

    Args:
        folder: the sweep folder (`<output_dir>/sweeps/<name>`, holding sweep.json).
        out_dir: where to write (default `<folder>/report`).
        metric: the metric to plot (default: sweep.json's `metric`, else the task's primary one).

    Returns:
        The report's `ReportPaths`.
    """
    from collapselab.report.outcomes import fmt

    plan = read_plan(folder)
    trials = from_folder(folder)
    metric = metric or plan.get("metric") or trials[0].primary
    out = out_dir or folder / "report"
    doc = Document(f"collapselab sweep: {plan['name']}")
    keys = grid_keys(trials)
    done = sum(t.done == t.total for t in trials)
    doc.add(Heading("Overview"), Para(
        f"Sweep **{plan['name']}** over {', '.join(f'`{k}`' for k in keys)}: {len(trials)} trials, {done} finished. "
        "Each trial is an ordinary run with its own run directory; the table shows each trial's final generation. "
        "Intervals are 95 % confidence intervals of the mean over seeds (t distribution)."))

    rows = comparison_rows(trials)
    names = [c for c in rows[0] if c not in (*keys, "run_id", "status", "arm", "seed")] if rows else []
    doc.add(Heading("Trials"))
    doc.add(Table(keys + ["run id", "status", "arm", "seed"] + [metric_label(n) for n in names],
                  [[_cell(r[k]) for k in keys] + [f"`{r['run_id']}`", r["status"], _cell(r["arm"]), _cell(r["seed"])]
                   + [fmt(r[n]) if r[n] is not None else "" for n in names] for r in rows],
                  caption="Final generation of every trial, arm and seed"))

    doc.add(Heading(f"{metric_label(metric)} against the swept key"))
    try:
        key = swept_key(trials)
    except ValueError as e:
        doc.add(Para(str(e)))
        key = None
    lines = metric_by_key(trials, metric, key) if key else {}
    if key and lines:
        summaries = {line: {x: summarize(v) for x, v in by_x.items()} for line, by_x in lines.items()}
        table = [[f"`{line}`", _cell(x), fmt(s.mean), f"[{fmt(s.ci_low)}, {fmt(s.ci_high)}]", str(s.n)]
                 for line, by_x in summaries.items() for x, s in by_x.items()]
        doc.add(Table(["arm | other keys", key, "mean", "95 % CI", "seeds"], table,
                      caption=f"{metric_label(metric)} at the final generation, over seeds"))
        path = metric_against_key(summaries, key, metric_label(metric), f"{metric_label(metric)} against {key}", out / "figures" / "sweep.png")
        doc.add(Figure(path, f"{metric_label(metric)} at the final generation against `{key}`; error bars: 95 % CI over seeds."))
    elif key:
        doc.add(Para(f"No finished trial has {metric!r} at its final generation yet."))
    atomic_write_text(out / "report.md", doc.markdown(out))
    atomic_write_text(out / "report.html", doc.html())
    return ReportPaths(out / "report.md", out / "report.html", [b.path for b in doc.blocks if isinstance(b, Figure)])


def metric_against_key(summaries: dict[str, dict[Any, Any]], key: str, ylabel: str, title: str, path: Path) -> Path:
    """One line per arm (and other grid values): mean over seeds at each value of `key`,
    95 % CI error bars. Numeric values sit on a numeric axis, others in grid order."""
    import numpy as np

    from collapselab.report.figures import COLORS, DPI, plt

    xs = list(dict.fromkeys(x for by_x in summaries.values() for x in by_x))
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (line, by_x) in enumerate(summaries.items()):
        points = sorted(by_x.items(), key=lambda p: p[0] if numeric else xs.index(p[0]))
        pos = [p[0] if numeric else xs.index(p[0]) for p in points]
        s = [p[1] for p in points]
        err = np.array([[v.mean - v.ci_low for v in s], [v.ci_high - v.mean for v in s]])
        ax.errorbar(pos, [v.mean for v in s], yerr=err, marker="o", capsize=5, color=COLORS[i % len(COLORS)], label=line)
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel(key)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


__all__ = ["TrialResult", "metric_against_key", "write_sweep_report"]

"""Generations: every metric across generations, a line per arm, seeds as mean and 95 % band."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from collapselab.dashboard import charts
from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context
from collapselab.metrics.registry import display, metric_label
from collapselab.metrics.stages import STAGE_MEANING
from collapselab.metrics.stats import summarize
from collapselab.tasks import get_task

STAGE = "collapse_stage"  # recorded by the engine per generation; shown as its own table


def aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds and the 95 % CI of the mean (t distribution, metrics/stats.py) per
    (metric, arm, generation); columns metric, arm, generation, mean, ci_low, ci_high, seeds."""

    out = []
    for (name, arm, g), group in rows.dropna(subset=["value"]).groupby(["name", "arm", "generation"], sort=False):
        s = summarize(group["value"].tolist())
        out.append({"metric": name, "arm": arm, "generation": int(g), "mean": s.mean,
                    "ci_low": s.ci_low, "ci_high": s.ci_high, "seeds": s.n})
    return pd.DataFrame(out, columns=["metric", "arm", "generation", "mean", "ci_low", "ci_high", "seeds"])


def stages(documents: list[dict[str, Any]], arms: list[str], seeds: list[int]) -> pd.DataFrame | None:
    """The collapse stage A/B/C the engine recorded per arm, seed and generation (engine.py
    `collapse_stage`, from the task's accuracy or MMLU's): one row per arm and seed, one
    column per generation; None when no generation of the chosen arms and seeds has one."""

    rows = []
    for d in documents:
        entry = (d["document"] or {}).get("metrics", {}).get(STAGE)
        if entry is not None and d["arm"] in arms and d["seed"] in seeds:
            stage = entry["details"]["stage"]
            rows.append({"arm": d["arm"], "seed": d["seed"], "generation": d["generation"],
                         "stage": f"{stage}: {STAGE_MEANING[stage]}"})
    if not rows:
        return None
    found = pd.DataFrame(rows)
    wide = found.pivot(index=["arm", "seed"], columns="generation", values="stage")
    order = sorted(wide.index, key=lambda k: (arms.index(k[0]), k[1]))
    return wide.reindex(order).rename(columns=lambda g: f"gen {g}")


def render(ctx: Context) -> None:
    st.header(f"Generations: {ctx.run_id}")
    rows = pd.DataFrame(ctx.source.metrics(ctx.run_id))
    if rows.empty:
        st.write("No generation of this run is recorded yet.")
        return
    recorded = sorted(int(g) for g in rows.generation.unique())
    st.write(f"Recorded: generations {recorded[0]} to {recorded[-1]} of G = {ctx.run['generations_planned'] or '?'} "
             f"({ctx.run['generations']} of {ctx.run['generations_expected'] or '?'} arm x seed x generation).")
    arms = sel.many("arms", "arms", [a for a in ctx.arms if a in set(rows.arm)])
    seeds = sel.many("seeds", "seeds", sorted(int(s) for s in rows.seed.unique()))
    recorded_names = set(rows.name) - {STAGE}
    main = [m for m in get_task(ctx.task).main_metrics if m in recorded_names]  # the report's headline metrics first
    names = main + sorted(recorded_names - set(main))
    metrics = sel.many("metrics", "metrics", names, default=main or names[:4], format_func=metric_label)
    show_seeds = sel.flag("show_seeds", "show individual seeds")
    chosen = rows[rows.arm.isin(arms) & rows.seed.isin(seeds) & rows.name.isin(metrics)]
    table = aggregate(chosen)
    order = {"metric": {m: i for i, m in enumerate(metrics)}, "arm": {a: i for i, a in enumerate(arms)}}
    table = table.sort_values(["metric", "arm", "generation"], key=lambda c: c.map(order[c.name]) if c.name in order else c,
                              ignore_index=True)
    better = rows.drop_duplicates("name").set_index("name")["higher_is_better"].to_dict()
    columns = st.columns(2)
    for i, metric in enumerate(metrics):
        direction = "higher is better ↑" if better[metric] else "lower is better ↓"
        per_seed = chosen[chosen.name == metric][["arm", "seed", "generation", "value"]] if show_seeds else None
        chart = charts.metric_over_generations(
            table[table.metric == metric], per_seed, title=f"{display(metric)[0]} ({direction})",
            y_title=metric_label(metric), arms=arms, colors=ctx.colors)
        columns[i % 2].altair_chart(chart, width="stretch")
    seeds_note = "one seed: no band" if len(seeds) == 1 else f"band: 95 % CI of the mean over {len(seeds)} seeds"
    dashed = "; dashed lines: each seed (legend: seed)" if show_seeds else ""
    st.caption(f"Mean over seeds per arm (legend: arm); {seeds_note}{dashed}. Each metric's direction of better is in its title.")

    _stage_section(ctx, arms, seeds)

    st.subheader("Table")
    shown = table.assign(direction=table.metric.map(lambda m: "higher" if better[m] else "lower"))
    st.dataframe(shown.map(lambda v: round(v, 6) if isinstance(v, float) and math.isfinite(v) else v), hide_index=True)
    st.download_button("Download CSV", shown.to_csv(index=False).encode(), file_name=f"{ctx.run_id}-generations.csv",
                       mime="text/csv", key="download_generations", on_click="ignore")


def _stage_section(ctx: Context, arms: list[str], seeds: list[int]) -> None:
    st.subheader("Collapse stage")
    found = stages(ctx.source.documents(ctx.run_id), arms, seeds)
    if found is None:
        st.write(f"No collapse stage in this {ctx.task} run: a stage needs an accuracy (the task's own, "
                 "as qa's F1, or MMLU's with `evaluation.mmlu`).")
        return
    st.dataframe(found)
    st.caption("As the engine recorded it per generation (`evaluation.stages`): A keeps at least `retained` of "
               "generation 0's above-chance accuracy; B fluent but wrong; C collapsed (at chance, or gibberish "
               "synthetic data).")

"""Generations: every metric across generations, a line per arm, seeds as mean and 95 % band."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from collapselab.dashboard import charts
from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context
from collapselab.errors import CollapselabError

# task -> (metric, scale to a fraction, chance level): the accuracy the collapse stage of
# metrics/stages.py is defined on. lm runs have none (perplexity is not an accuracy).
STAGE_ACCURACY: dict[str, tuple[str, float, float]] = {"qa": ("f1", 0.01, 0.0)}


def aggregate(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds and the 95 % CI of the mean (t distribution, metrics/stats.py) per
    (metric, arm, generation); columns metric, arm, generation, mean, ci_low, ci_high, seeds."""
    from collapselab.metrics.stats import summarize

    out = []
    for (name, arm, g), group in rows.dropna(subset=["value"]).groupby(["name", "arm", "generation"], sort=False):
        s = summarize(group["value"].tolist())
        out.append({"metric": name, "arm": arm, "generation": int(g), "mean": s.mean,
                    "ci_low": s.ci_low, "ci_high": s.ci_high, "seeds": s.n})
    return pd.DataFrame(out, columns=["metric", "arm", "generation", "mean", "ci_low", "ci_high", "seeds"])


def stages(table: pd.DataFrame, task: str | None, thresholds: Any) -> pd.DataFrame | None:
    """Collapse stage A/B/C per arm and generation (metrics/stages.py) from the mean
    accuracy over seeds (and the synthetic data's mean gibberish score where recorded);
    None when the task defines no stage or the accuracy metric was not computed."""
    from collapselab.metrics.stages import STAGE_MEANING, collapse_stages

    if task not in STAGE_ACCURACY:
        return None
    metric, scale, chance = STAGE_ACCURACY[task]
    rows = []
    for arm, group in table[table.metric == metric].groupby("arm", sort=False):
        group = group.sort_values("generation")
        if group.empty or group.generation.iloc[0] != 0:
            continue  # generation 0 is the reference
        gib = table[(table.metric == "gibberish_score") & (table.arm == arm)].set_index("generation")["mean"]
        accuracy = [min(1.0, max(0.0, v * scale)) for v in group["mean"]]
        gibberish = [float(gib[g]) if g in gib.index else None for g in group.generation]
        for g, s in zip(group.generation, collapse_stages(accuracy, chance=chance, gibberish=gibberish,
                                                          thresholds=thresholds), strict=True):
            rows.append({"arm": arm, "generation": int(g), "stage": f"{s.stage}: {STAGE_MEANING[s.stage]}",
                         "why": s.reason})
    return pd.DataFrame(rows) if rows else None


def render(ctx: Context) -> None:
    from collapselab.report.outcomes import LABELS, MAIN, label

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
    recorded_names = set(rows.name)
    main = [m for m in MAIN.get(ctx.task or "", []) if m in recorded_names]  # the report's main metrics first
    names = main + sorted(recorded_names - set(main))
    metrics = sel.many("metrics", "metrics", names, default=main or names[:4], format_func=label)
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
            table[table.metric == metric], per_seed, title=f"{LABELS.get(metric, (metric,))[0]} ({direction})",
            y_title=label(metric), arms=arms)
        columns[i % 2].altair_chart(chart, width="stretch")
    seeds_note = "one seed: no band" if len(seeds) == 1 else f"band: 95 % CI of the mean over {len(seeds)} seeds"
    st.caption(f"Mean over seeds per arm; {seeds_note}. Each metric's direction of better is in its title.")

    if ctx.task in STAGE_ACCURACY:  # only the stage's inputs: aggregating every metric costs a second
        needed = rows.name.isin([STAGE_ACCURACY[ctx.task][0], "gibberish_score"])
        _stage_section(ctx, aggregate(rows[needed & rows.arm.isin(arms) & rows.seed.isin(seeds)]), arms)
    else:
        _stage_section(ctx, table, arms)

    st.subheader("Table")
    shown = table.assign(direction=table.metric.map(lambda m: "higher" if better[m] else "lower"))
    st.dataframe(shown.map(lambda v: round(v, 6) if isinstance(v, float) and math.isfinite(v) else v), hide_index=True)
    st.download_button("Download CSV", shown.to_csv(index=False).encode(), file_name=f"{ctx.run_id}-generations.csv",
                       mime="text/csv", key="download_generations", on_click="ignore")


def _stage_section(ctx: Context, table: pd.DataFrame, arms: list[str]) -> None:
    st.subheader("Collapse stage")
    if ctx.task not in STAGE_ACCURACY:
        defined = ", ".join(f"{m} for {t}" for t, (m, _, _) in STAGE_ACCURACY.items())
        st.write(f"No collapse stage for this {ctx.task} run: stages are defined on an accuracy ({defined}).")
        return
    try:
        thresholds = _stage_thresholds(ctx)
    except CollapselabError as e:
        st.write(f"No collapse stage: the run's recorded config does not load here ({str(e).splitlines()[0]}).")
        return
    found = stages(table, ctx.task, thresholds)
    if found is None:
        st.write(f"No collapse stage yet: it needs {STAGE_ACCURACY[ctx.task][0]} at generation 0 of the chosen arms.")
        return
    order = [a for a in arms if a in set(found.arm)]
    wide = found.pivot(index="arm", columns="generation", values="stage").reindex(order)
    st.dataframe(wide.rename(columns=lambda g: f"gen {g}"))
    st.caption("A: keeps at least `evaluation.stages.retained` of generation 0's above-chance accuracy; "
               "B: fluent but wrong; C: collapsed (at chance, or gibberish synthetic data).")


def _stage_thresholds(ctx: Context) -> Any:
    """The run's `evaluation.stages` thresholds, from its recorded config."""
    import yaml

    from collapselab.config import config_from_dict

    config = yaml.safe_load(ctx.source.run(ctx.run_id)["config_yaml"])
    return config_from_dict(config, source=f"run {ctx.run_id!r} config").evaluation.stages

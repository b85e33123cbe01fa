"""The dashboard's charts (Vega-Lite through Altair, which Streamlit bundles).

Every function takes a ready pandas DataFrame and returns a chart with labelled axes and
units and a legend naming what its colours (and dashes) stand for: the arms, the seeds
where they are drawn, the generations. Colours come from the report's palette
(`collapselab.report.palette`), so an arm and a generation look the same in both; pass
`colors` built from every arm of the run, so hiding an arm never recolours the others.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from collapselab.report.palette import generation_colors

HEIGHT = 260
# Room above the plot for the title (Streamlit's chart frame clips a title drawn with no
# padding) and below it for the legend.
PADDING = {"top": 14, "left": 6, "right": 6, "bottom": 6}
_LEGEND = {"orient": "bottom", "direction": "horizontal", "titleOrient": "left", "labelLimit": 220, "symbolOpacity": 1}


def _arm_color(arms: list[str], colors: dict[str, str]) -> alt.Color:
    scale = alt.Scale(domain=arms, range=[colors[a] for a in arms])
    return alt.Color("arm:N", title="arm", scale=scale, sort=arms, legend=alt.Legend(**_LEGEND))


def _title(text: str) -> alt.TitleParams:
    return alt.TitleParams(text, anchor="start", offset=8, limit=0)


def _framed(chart: Any, title: str, height: Any) -> Any:
    return chart.properties(title=_title(title), height=height, padding=PADDING)


def metric_over_generations(table: pd.DataFrame, seeds: pd.DataFrame | None, *, title: str, y_title: str,
                            arms: list[str], colors: dict[str, str]) -> alt.LayerChart:
    """Mean over seeds per arm and generation with its 95 % band (`ci_low`..`ci_high`);
    `seeds` (arm, seed, generation, value) adds one thin dashed line per seed, its dash
    named in a second legend."""
    x = alt.X("generation:O", title="generation", axis=alt.Axis(labelAngle=0))
    color = _arm_color(arms, colors)
    tooltip = ["arm", "generation", alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("ci_low:Q", format=".4g"),
               alt.Tooltip("ci_high:Q", format=".4g"), "seeds"]
    base = alt.Chart(table)
    layers: list[Any] = [
        base.mark_area(opacity=0.18).encode(x=x, y=alt.Y("ci_low:Q", title=y_title, scale=alt.Scale(zero=False)),
                                            y2="ci_high:Q", color=color),
        base.mark_line(point=True).encode(x=x, y=alt.Y("mean:Q", title=y_title), color=color, tooltip=tooltip),
    ]
    if seeds is not None and not seeds.empty:
        layers.append(alt.Chart(seeds.assign(seed=seeds.seed.map(lambda s: f"seed {s}"))).mark_line(
            strokeWidth=1, opacity=0.7).encode(
            x=x, y="value:Q", color=color,
            strokeDash=alt.StrokeDash("seed:N", title="seed", legend=alt.Legend(**_LEGEND),
                                      scale=alt.Scale(range=[[3, 3], [6, 2], [1, 2], [8, 3, 2, 3]])),
            tooltip=["arm", "seed", "generation", alt.Tooltip("value:Q", format=".4g")]))
    return _framed(alt.layer(*layers).resolve_legend(strokeDash="independent"), title, HEIGHT)


def scores_over_generations(table: pd.DataFrame, *, title: str, y_title: str, arms: list[str],
                            colors: dict[str, str]) -> alt.LayerChart:
    """One test example's (or prompt's) score per generation: a line per arm (mean over
    seeds), a point per seed."""
    x = alt.X("generation:O", title="generation", axis=alt.Axis(labelAngle=0))
    color = _arm_color(arms, colors)
    y = alt.Y("score:Q", title=y_title, axis=alt.Axis(format=".3~g"), scale=alt.Scale(zero=False))  # one axis for both layers
    mean = table.groupby(["arm", "generation"], as_index=False)["score"].mean()
    return _framed(alt.layer(
        alt.Chart(mean).mark_line().encode(x=x, y=y, color=color),
        alt.Chart(table).mark_point(filled=True, size=60).encode(
            x=x, y=y, color=color, tooltip=["arm", "seed", "generation", alt.Tooltip("score:Q", format=".4g")]),
    ), title, HEIGHT)


def perplexity_histograms(table: pd.DataFrame, *, title: str) -> alt.Chart:
    """Overlaid step histograms, one per generation (columns generation, left, right, share),
    on a log perplexity axis: the Nature 2024 figure. Generations are shaded as in the
    report (later ones darker)."""
    generations = sorted(int(g) for g in table.generation.unique())
    shades = generation_colors(generations)
    return _framed(alt.Chart(table).mark_area(opacity=0.35, interpolate="step-after", line=True).encode(
        x=alt.X("left:Q", title="per-sequence perplexity under the generation-0 model (log scale)",
                scale=alt.Scale(type="log")),
        y=alt.Y("share:Q", title="share of the generation's sequences", stack=None),
        color=alt.Color("generation:O", title="generation", legend=alt.Legend(**_LEGEND),
                        scale=alt.Scale(domain=generations, range=[shades[g] for g in generations])),
        tooltip=["generation", alt.Tooltip("left:Q", format=".4g", title="from"),
                 alt.Tooltip("right:Q", format=".4g", title="to"), alt.Tooltip("share:Q", format=".3f")],
    ), title, HEIGHT + 40)


def funnel(table: pd.DataFrame, *, title: str, arm: str, colors: dict[str, str]) -> alt.Chart:
    """Candidates left after each refinery stage (columns stage, records, order) of one
    build of `arm`, in the arm's colour."""
    return _framed(alt.Chart(table.assign(arm=arm)).mark_bar().encode(
        y=alt.Y("stage:N", title=None, sort=alt.EncodingSortField("order"), axis=alt.Axis(labelLimit=260)),
        x=alt.X("records:Q", title="candidate records (count)"),
        color=_arm_color([arm], colors),
        tooltip=["stage", "records"],
    ), title, alt.Step(26))


def bars(table: pd.DataFrame, *, x: str, y: str, x_title: str, title: str, arm: str, colors: dict[str, str]) -> alt.Chart:
    """Horizontal bars of column `x` per column `y` (e.g. success rate per strategy) of one
    build of `arm`, in the arm's colour."""
    data = table[[y, x]].set_axis(["name", "value"], axis=1).assign(arm=arm)  # Vega field names without spaces
    return _framed(alt.Chart(data).mark_bar().encode(
        y=alt.Y("name:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260)),
        x=alt.X("value:Q", title=x_title),
        color=_arm_color([arm], colors),
        tooltip=[alt.Tooltip("name:N", title=y), alt.Tooltip("value:Q", title=x, format=".3f")],
    ), title, alt.Step(26))

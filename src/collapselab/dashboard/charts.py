"""The dashboard's charts (Vega-Lite through Altair, which Streamlit bundles).

Every function takes a ready pandas DataFrame and returns a chart with labelled axes and
units; colours follow the report's palette so an arm looks the same in both.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from collapselab.report.figures import COLORS

HEIGHT = 260


def _arm_color(arms: list[str], *, legend: bool = True) -> alt.Color:
    scale = alt.Scale(domain=arms, range=COLORS[: max(1, len(arms))])
    return alt.Color("arm:N", title="arm", scale=scale, sort=arms, legend=alt.Legend() if legend else None)


def _title(text: str) -> alt.TitleParams:
    return alt.TitleParams(text, anchor="start", offset=10)


def metric_over_generations(table: pd.DataFrame, seeds: pd.DataFrame | None, *, title: str, y_title: str,
                            arms: list[str]) -> alt.LayerChart:
    """Mean over seeds per arm and generation with its 95 % band (`ci_low`..`ci_high`);
    `seeds` (arm, seed, generation, value) adds one thin dashed line per seed."""
    x = alt.X("generation:O", title="generation", axis=alt.Axis(labelAngle=0))
    color = _arm_color(arms)
    tooltip = ["arm", "generation", alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("ci_low:Q", format=".4g"),
               alt.Tooltip("ci_high:Q", format=".4g"), "seeds"]
    base = alt.Chart(table)
    layers: list[Any] = [
        base.mark_area(opacity=0.18).encode(x=x, y=alt.Y("ci_low:Q", title=y_title, scale=alt.Scale(zero=False)),
                                            y2="ci_high:Q", color=_arm_color(arms, legend=False)),
        base.mark_line(point=True).encode(x=x, y=alt.Y("mean:Q", title=y_title), color=color, tooltip=tooltip),
    ]
    if seeds is not None and not seeds.empty:
        layers.append(alt.Chart(seeds).mark_line(strokeDash=[3, 3], strokeWidth=1, opacity=0.7).encode(
            x=x, y="value:Q", color=color, detail="seed:N",
            tooltip=["arm", "seed", "generation", alt.Tooltip("value:Q", format=".4g")]))
    return alt.layer(*layers).properties(title=_title(title), height=HEIGHT)


def scores_over_generations(table: pd.DataFrame, *, title: str, y_title: str, arms: list[str]) -> alt.LayerChart:
    """One test example's score per generation: a line per arm (mean over seeds), a point per seed."""
    x = alt.X("generation:O", title="generation", axis=alt.Axis(labelAngle=0))
    color = _arm_color(arms)
    mean = table.groupby(["arm", "generation"], as_index=False)["score"].mean()
    return alt.layer(
        alt.Chart(mean).mark_line().encode(x=x, y=alt.Y("score:Q", title=y_title, axis=alt.Axis(format=".3g")), color=color),
        alt.Chart(table).mark_point(filled=True, size=60).encode(
            x=x, y="score:Q", color=color, tooltip=["arm", "seed", "generation", alt.Tooltip("score:Q", format=".4g")]),
    ).properties(title=_title(title), height=HEIGHT)


def perplexity_histograms(table: pd.DataFrame, *, title: str) -> alt.Chart:
    """Overlaid step histograms, one per generation (columns generation, left, right, share),
    on a log perplexity axis: the Nature 2024 figure."""
    return alt.Chart(table).mark_area(opacity=0.35, interpolate="step-after", line=True).encode(
        x=alt.X("left:Q", title="per-sequence perplexity under the generation-0 model (log scale)",
                scale=alt.Scale(type="log")),
        y=alt.Y("share:Q", title="share of the generation's sequences", stack=None),
        color=alt.Color("generation:O", title="generation", scale=alt.Scale(scheme="viridis")),
        tooltip=["generation", alt.Tooltip("left:Q", format=".4g", title="from"),
                 alt.Tooltip("right:Q", format=".4g", title="to"), alt.Tooltip("share:Q", format=".3f")],
    ).properties(title=_title(title), height=HEIGHT + 40)


def funnel(table: pd.DataFrame, *, title: str) -> alt.Chart:
    """Candidates left after each refinery stage (columns stage, records, order)."""
    return alt.Chart(table).mark_bar().encode(
        y=alt.Y("stage:N", title=None, sort=alt.EncodingSortField("order"), axis=alt.Axis(labelLimit=260)),
        x=alt.X("records:Q", title="candidate records (count)"),
        color=alt.value(COLORS[0]),
        tooltip=["stage", "records"],
    ).properties(title=_title(title), height=alt.Step(26))


def bars(table: pd.DataFrame, *, x: str, y: str, x_title: str, title: str) -> alt.Chart:
    """Horizontal bars of column `x` per column `y` (e.g. success rate per strategy)."""
    data = table[[y, x]].set_axis(["name", "value"], axis=1)  # Vega field names without spaces
    return alt.Chart(data).mark_bar().encode(
        y=alt.Y("name:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260)),
        x=alt.X("value:Q", title=x_title),
        color=alt.value(COLORS[2]),
        tooltip=[alt.Tooltip("name:N", title=y), alt.Tooltip("value:Q", title=x, format=".3f")],
    ).properties(title=_title(title), height=alt.Step(26))

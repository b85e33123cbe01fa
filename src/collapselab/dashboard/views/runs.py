"""Runs: every run with its status and progress; two runs' metrics and configs side by side."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context, progress_of, status_of
from collapselab.metrics.registry import metric_label
from collapselab.tasks import get_task


def flatten(config: Any, prefix: str = "") -> dict[str, str]:
    """Dotted keys -> values (as JSON) of a config; list items that have a `name` (arms)
    are keyed by it, so comparing two runs pairs arms by name, not by position."""
    out: dict[str, str] = {}
    if isinstance(config, dict):
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(config, list) and config and all(isinstance(x, dict) and "name" in x for x in config):
        for item in config:
            out.update(flatten({k: v for k, v in item.items() if k != "name"}, f"{prefix}[{item['name']}]"))
    else:
        out[prefix] = json.dumps(config, ensure_ascii=False)
    return out


def config_differences(a: dict[str, Any], b: dict[str, Any], *, every_key: bool = False) -> list[dict[str, str]]:
    """Rows (key, a, b) of the keys whose values differ (every key with `every_key`);
    a key one config lacks shows as 'not set'."""
    fa, fb = flatten(a), flatten(b)
    rows = []
    for key in sorted(fa.keys() | fb.keys()):
        va, vb = fa.get(key, "not set"), fb.get(key, "not set")
        if every_key or va != vb:
            rows.append({"key": key, "a": va, "b": vb})
    return rows


def final_means(rows: list[dict[str, Any]]) -> tuple[int | None, dict[tuple[str, str], float]]:
    """A run's last recorded generation and, at it, the mean over seeds of each (arm, metric)
    (`rows` as `Store.metrics` gives them)."""
    values = [r for r in rows if r["value"] is not None]
    if not values:
        return None, {}
    last = max(r["generation"] for r in values)
    found: dict[tuple[str, str], list[float]] = {}
    for r in values:
        if r["generation"] == last:
            found.setdefault((r["arm"], r["name"]), []).append(r["value"])
    return last, {k: sum(v) / len(v) for k, v in found.items()}


def metric_comparison(a: dict[tuple[str, str], float], b: dict[tuple[str, str], float], metrics: list[str],
                      arms: list[str]) -> list[dict[str, Any]]:
    """Rows (metric, arm, a, b, b_minus_a) of two runs' final means, arms paired by name;
    a value one run lacks is None (and so is the difference)."""
    rows = []
    for m in metrics:
        for arm in arms:
            va, vb = a.get((arm, m)), b.get((arm, m))
            if va is None and vb is None:
                continue
            rows.append({"metric": m, "arm": arm, "a": va, "b": vb, "b_minus_a": None if va is None or vb is None else vb - va})
    return rows


def _when(iso: str | None) -> str:
    """An ISO 8601 UTC time to the second, as people read it ('' when not recorded)."""
    return "" if iso is None else iso[:19].replace("T", " ") + (" UTC" if iso.endswith("+00:00") else "")


def render(ctx: Context) -> None:
    import yaml

    st.header("Runs")
    table = pd.DataFrame([
        {"run": r["run_id"], "experiment": r["experiment"], "task": r["task"], "status": status_of(r),
         "generations": progress_of(r), "G": r["generations_planned"], "arms": ", ".join(r["arms"]),
         "started": _when(r["created"]), "last generation": _when(r["last_finished"]), "config hash": r["config_hash"],
         "git SHA": r["git_sha"], "error": r["error"] or ""}
        for r in reversed(ctx.runs)  # newest first
    ])
    st.dataframe(table, hide_index=True)
    st.caption("generations: (arm, seed, generation) recorded of arms x seeds x G; "
               "status as the engine last recorded it (a run killed without a chance to record shows running).")

    st.subheader("Compare two runs")
    ids = [r["run_id"] for r in reversed(ctx.runs)]
    if len(ids) < 2:
        st.write("One run only: nothing to compare it with yet.")
        return
    left, right = st.columns(2)
    a = sel.one("compare_a", "run A", ids, default=ids[1], where=left)
    b = sel.one("compare_b", "run B", ids, default=ids[0], where=right)
    _metrics(ctx, a, b)
    st.markdown("**Config**")
    every = sel.flag("all_keys", "show every key (not only those that differ)", where=st)
    ca = yaml.safe_load(ctx.source.run(a)["config_yaml"])
    cb = yaml.safe_load(ctx.source.run(b)["config_yaml"])
    rows = config_differences(ca, cb, every_key=every)
    if not rows:
        st.write(f"`{a}` and `{b}` have the same config.")
        return
    st.dataframe(pd.DataFrame(rows).rename(columns={"a": f"A: {a}", "b": f"B: {b}"}), hide_index=True)
    if not every:
        st.caption(f"{len(rows)} of {len(flatten(ca).keys() | flatten(cb).keys())} config keys differ.")


def _metrics(ctx: Context, a: str, b: str) -> None:
    """Both runs' metrics at their last recorded generation, arms side by side."""
    st.markdown("**Metrics**")
    ga, ma = final_means(ctx.source.metrics(a))
    gb, mb = final_means(ctx.source.metrics(b))
    if ga is None or gb is None:
        st.write(f"`{a if ga is None else b}` has no metric recorded yet.")
        return
    by_id = {r["run_id"]: r for r in ctx.runs}
    ra, rb = by_id[a], by_id[b]
    arms = list(dict.fromkeys([*ra["arms"], *rb["arms"]]))
    recorded = sorted({m for _, m in ma} | {m for _, m in mb})
    headline = list(dict.fromkeys(m for run in (ra, rb) for m in get_task(run["task"]).main_metrics if m in recorded))
    every = sel.flag("all_metrics", "show every metric (not only the tasks' headline metrics)", where=st)
    rows = metric_comparison(ma, mb, recorded if every or not headline else headline, arms)
    table = pd.DataFrame(rows, columns=["metric", "arm", "a", "b", "b_minus_a"])
    table["metric"] = table.metric.map(metric_label)
    st.dataframe(table.rename(columns={"a": f"A: {a} (gen {ga})", "b": f"B: {b} (gen {gb})", "b_minus_a": "B - A"}),
                 hide_index=True)
    st.caption("Each run at its last recorded generation, mean over its seeds; arms are paired by name, and a "
               "metric or arm one run lacks is left empty.")

"""Refinery: the filter funnel, rejected records with their reasons, per-strategy success
rates, and the three-arm A/B/C verdict with recovery (report/criteria.py, report/outcomes.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from collapselab.dashboard import charts
from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context
from collapselab.errors import CollapselabError
from collapselab.metrics.registry import metric_label
from collapselab.records import Record
from collapselab.refinery.pipeline import rejection_of
from collapselab.report.outcomes import criteria_met, criteria_rows, fmt

SHOWN = 200


def funnel_stages(stats: dict[str, Any]) -> pd.DataFrame:
    """Candidates left after each stage of one refinery build: attempts, then each filter
    in the order it ran, then passed and used (columns order, stage, records, rejected)."""
    rows = [{"stage": "attempts", "records": stats["attempts"], "rejected": 0}]
    for name in stats.get("filter_order", sorted(stats.get("filters", {}))):
        f = stats["filters"][name]
        rows.append({"stage": f"after {name}", "records": f["checked"] - f["rejected"], "rejected": f["rejected"]})
    rows.append({"stage": "passed", "records": stats["passed"], "rejected": 0})
    rows.append({"stage": "used", "records": stats.get("used", stats["passed"]), "rejected": 0})
    return pd.DataFrame([{"order": i, **r} for i, r in enumerate(rows)])


def render(ctx: Context) -> None:
    st.header(f"Refinery: {ctx.run_id}")
    built = [d for d in ctx.source.documents(ctx.run_id) if d["document"] is not None and d["document"].get("refinery")]
    builds = {f"{d['arm']} / seed {d['seed']}": d["document"]["refinery"] for d in built}
    keys = {f"{d['arm']} / seed {d['seed']}": (d["arm"], d["seed"], d["generation"]) for d in built}
    if not builds:
        st.write("No refinery in this run: no arm builds its data with the refinery (`arms[].data` is human everywhere).")
        _verdict(ctx)
        return
    summary = pd.DataFrame([
        {"build": name, "kind": s.get("kind", ""), "attempts": s["attempts"], "passed": s["passed"],
         "used": s.get("used", s["passed"]), "pass rate": s["passed"] / s["attempts"] if s["attempts"] else None,
         "rejected by reason": ", ".join(f"{k} {v}" for k, v in s.get("rejected", {}).items()) or "none"}
        for name, s in builds.items()])
    st.dataframe(summary, hide_index=True)
    build = sel.one("build", "refinery build", list(builds))
    stats = builds[build]

    left, right = st.columns(2)
    arm = keys[build][0]
    left.altair_chart(charts.funnel(funnel_stages(stats), title=f"Filter funnel of {build}", arm=arm, colors=ctx.colors),
                      width="stretch")
    strategies = pd.DataFrame([
        {"strategy": name, "planned": v.get("planned", v.get("attempts")), "not applicable": v.get("not_applicable", 0),
         "passed filters": v.get("passed"), "success rate": v.get("success_rate")}
        for name, v in stats.get("strategies", {}).items()])
    if strategies.empty:
        right.write("This build records no per-strategy counts.")
    else:
        right.altair_chart(charts.bars(strategies.dropna(subset=["success rate"]), x="success rate", y="strategy",
                                       x_title="success rate (passed / planned)", title="Success rate per strategy",
                                       arm=arm, colors=ctx.colors),
                           width="stretch")
        st.dataframe(strategies, hide_index=True)

    _rejected(ctx, *keys[build], fmt)
    _verdict(ctx)


def _rejected(ctx: Context, arm: str, seed: int, generation: int, fmt: Any) -> None:
    st.subheader("Rejected records")
    try:
        rows = ctx.source.records(ctx.run_id, arm, seed, generation, "rejected")
    except CollapselabError as e:
        st.write(f"Cannot show them: {e}")
        return
    if not rows:
        st.write("This build rejected no record.")
        return
    table = []
    for r in rows:
        why = rejection_of(Record(**{**r, "answers": tuple(r["answers"]), "choices": tuple(r["choices"])})) or {}
        table.append({"reason": why.get("reason", "not recorded"),
                      "measured": fmt(why["value"]) if why.get("value") is not None else "",
                      "question": r["question"], "answer": r["answers"][0] if r["answers"] else (r["text"] or ""),
                      "id": r["id"], "parent": r["parent_id"]})
    frame = pd.DataFrame(table)
    reasons = sorted(frame.reason.unique())
    chosen = sel.many("reasons", "reasons", reasons, where=st)
    shown = frame[frame.reason.isin(chosen)]
    st.dataframe(shown.head(SHOWN), hide_index=True)
    st.caption(f"{len(shown)} of {len(frame)} rejected records" + (f" (first {SHOWN} shown)" if len(shown) > SHOWN else "")
               + "; each is counted under the first filter it failed.")


def _verdict(ctx: Context) -> None:
    st.subheader("A/B/C verdict")
    found = ctx.source.criteria(ctx.run_id)
    if found is None:
        st.write("Not a three-arm refinery run (no arms with human, contaminated and synthetic data): no A/B/C verdict.")
        return
    roles, c = found
    arms, verdict = criteria_rows(c, roles)
    st.dataframe(pd.DataFrame(arms, columns=["arm", metric_label(c.metric)]), hide_index=True)
    st.dataframe(pd.DataFrame(verdict, columns=["criterion", "result", "detail"]), hide_index=True)
    met = criteria_met(c)
    (st.success if met else st.warning)(
        f"Verdict: {'met' if met else 'not met'} on {metric_label(c.metric)} (tolerance {fmt(c.tolerance)}); "
        f"recovery {fmt(c.recovery)} (1 = as good as human data, 0 = as bad as contaminated).")

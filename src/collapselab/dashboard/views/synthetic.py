"""Synthetic data: what each generation wrote, with provenance and per-sequence perplexity."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd
import streamlit as st

from collapselab.dashboard import charts
from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context
from collapselab.errors import CollapselabError
from collapselab.report.data import perplexity_histograms

ORDERS = ["as written", "perplexity, highest first", "perplexity, lowest first"]
REPEATED = 10


def output_text(r: dict[str, Any]) -> str:
    """What a record contributes as text, as the synthetic-data metrics read it
    (metrics/diversity.py `record_text`): its text (lm), else its first answer (qa)."""
    if r["text"] is not None:
        return r["text"]
    return r["answers"][0] if r["answers"] else ""


def repeated_outputs(texts: list[str], n: int = REPEATED) -> pd.DataFrame:
    """The `n` most frequent outputs (whitespace-trimmed, as `top_output_share` counts them)
    that occur more than once, with their count and share of all outputs."""
    counts = Counter(t.strip() for t in texts)
    top = [(t, c) for t, c in counts.most_common(n) if c > 1]
    return pd.DataFrame([{"output": t or "(empty)", "count": c, "share": c / len(texts)} for t, c in top],
                        columns=["output", "count", "share"])


def _generator(r: dict[str, Any]) -> str:
    tag = json.loads(r["generator"] or "{}")
    decoding = tag.get("decoding") or {}
    parts = [str(tag.get("model", "")), str(decoding.get("method", "")), tag.get("strategy")]
    return " ".join(p for p in parts if p) or "not recorded"


def render(ctx: Context) -> None:
    st.header(f"Synthetic data: {ctx.run_id}")
    files = {(f["arm"], f["seed"], f["generation"]) for f in ctx.source.data_files(ctx.run_id) if f["kind"] == "synthetic"}
    if not files:
        st.write("No generation of this run has recorded synthetic data yet.")
        return
    arm = sel.one("arm", "arm", [a for a in ctx.arms if any(k[0] == a for k in files)])
    seed = sel.one("seed", "seed", sorted({k[1] for k in files if k[0] == arm}))
    generation = sel.one("generation", "generation", sorted(k[2] for k in files if k[:2] == (arm, seed)))
    try:
        records = ctx.source.records(ctx.run_id, arm, seed, generation, "synthetic")
        perplexity = ctx.source.perplexities(ctx.run_id, arm)
    except CollapselabError as e:
        st.write(f"Cannot show the records: {e}")
        return
    ppl = perplexity.get((seed, generation))
    table = pd.DataFrame([{"id": r["id"], "output": output_text(r), "question": r["question"], "parent": r["parent_id"],
                           "source": r["source"], "generation": r["generation"], "written by": _generator(r),
                           "perplexity": None if ppl is None else ppl.get(r["id"])} for r in records])
    if not ctx.answers_questions:
        table = table.drop(columns="question")
    st.write(f"{len(records)} records written by generation {generation} of `{arm}` (seed {seed}).")
    if ppl is None:
        st.caption("No per-sequence perplexity for this generation (`synthetic_perplexity` was not computed, "
                   "or the run was recorded before synthetic_scores.parquet was kept).")
        table = table.drop(columns="perplexity")
    else:
        order = sel.one("order", "order", ORDERS, where=st)
        if order != ORDERS[0]:
            table = table.sort_values("perplexity", ascending=order == ORDERS[2], kind="stable")
    st.dataframe(table, hide_index=True)

    _provenance(ctx, records, seed)

    st.subheader("Most repeated outputs")
    top = repeated_outputs([output_text(r) for r in records])
    if top.empty:
        st.write(f"No output repeats: all {len(records)} are distinct.")
    else:
        st.dataframe(top, hide_index=True)

    st.subheader("Per-sequence perplexity per generation")
    by_generation: dict[int, list[float]] = {}
    for (_seed, g), values in sorted(perplexity.items()):
        by_generation.setdefault(g, []).extend(values.values())
    if not by_generation:
        st.write(f"No per-sequence perplexities recorded for `{arm}`.")
        return
    h = perplexity_histograms(by_generation)
    bins = pd.DataFrame([{"generation": g, "left": h.edges[i], "right": h.edges[i + 1], "share": share[i]}
                         for g, share in h.share.items() for i in range(len(share))])
    st.altair_chart(charts.perplexity_histograms(bins, title=f"What each generation of {arm} wrote, scored by the generation-0 model"),
                    width="stretch")
    st.caption("The Nature 2024 figure (Shumailov et al., Fig. 1b): as a run collapses, later generations write "
               "sequences the original model finds likely (the left edge grows) and a long tail of unlikely ones. "
               f"Seeds pooled; sequences per generation: {', '.join(f'{g}: {n}' for g, n in h.counts.items())}.")


def _provenance(ctx: Context, records: list[dict[str, Any]], seed: int) -> None:
    """One record in full: its text, the human record it came from, its generator settings."""
    st.subheader("Provenance of one record")
    ids = [r["id"] for r in records]
    chosen = sel.one("record", "record", ids, where=st)
    r = next(x for x in records if x["id"] == chosen)
    parent = _parents(ctx, seed).get(r["parent_id"] or "")
    left, right = st.columns(2)
    left.markdown(f"**Written** (generation {r['generation']}, source {r['source']})")
    left.text(_record_text(r))
    right.markdown(f"**Parent** `{r['parent_id']}`" + ("" if parent else ": not in the run's human data"))
    if parent:
        right.text(_record_text(parent))
    st.json(json.loads(r["generator"] or "{}"), expanded=False)


def _record_text(r: dict[str, Any]) -> str:
    if r["text"] is not None:
        return r["text"]
    answers = " / ".join(r["answers"]) or "(no answer)"
    return f"Q: {r['question']}\nA: {answers}\n\n{r['context'] or ''}"


def _parents(ctx: Context, seed: int) -> dict[str, dict[str, Any]]:
    """The run's human records of this seed by id (every arm's generation-0 training set)."""
    out: dict[str, dict[str, Any]] = {}
    files = ctx.source.data_files(ctx.run_id)
    for f in files:
        if f["kind"] == "train" and f["seed"] == seed and f["generation"] == 0:
            try:
                rows = ctx.source.records(ctx.run_id, f["arm"], seed, 0, "train")
            except CollapselabError:
                continue  # shown as "not in the run's human data"
            out.update((r["id"], r) for r in rows if r["source"] == "human")
    return out

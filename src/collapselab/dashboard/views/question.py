"""Question: one test question, its references, and every generation's answer per arm; for a
language-model run, one human prompt and every generation's continuation of it per arm."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from collapselab.dashboard import charts
from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context
from collapselab.errors import CollapselabError
from collapselab.metrics.registry import metric_label as label

PREVIEW = 90


def split_input(text: str) -> tuple[str, str]:
    """(question, context) of a qa prediction row's input ("question\\n\\ncontext")."""
    question, _, context = text.partition("\n\n")
    return question, context


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW else text[: PREVIEW - 1] + "…"


def render(ctx: Context) -> None:
    if ctx.answers_questions:
        _question(ctx)
    else:
        _prompt(ctx)


def _question(ctx: Context) -> None:
    st.header(f"Question: {ctx.run_id}")
    questions = ctx.source.questions(ctx.run_id)
    if not questions:
        st.write("No generation of this run is recorded yet.")
        return
    text = {q["example_id"]: split_input(q["input"])[0] for q in questions}
    needle = sel.text("search", "search questions", placeholder="words of the question, or its id").strip().casefold()
    ids = [i for i in text if needle in text[i].casefold() or needle in i.casefold()]
    st.sidebar.caption(f"{len(ids)} of {len(questions)} test questions match")
    if not ids:
        st.write(f"No test question contains {needle!r}.")
        return
    example = sel.one("question", "question", ids, format_func=lambda i: f"{_short(text[i])} [{i}]")
    arms = sel.many("arms", "arms", ctx.arms)
    h = ctx.source.question(ctx.run_id, example)
    history = [x for x in h["history"] if x["arm"] in arms]
    seeds = sel.many("seeds", "seeds", sorted({x["seed"] for x in h["history"]}))
    history = [x for x in history if x["seed"] in seeds]

    question, context = split_input(h["input"])
    st.markdown(f"**{question}**  \n`{example}`")
    references = json.loads(h["reference"])
    st.markdown("**Reference answers:** " + (" / ".join(f"`{r}`" for r in references) if references else "none: unanswerable (SQuAD v2)"))
    with st.expander("Context", expanded=True):
        st.write(context)

    names = sorted({k for x in history for k in x["scores"]})
    table = pd.DataFrame([{"arm": x["arm"], "seed": x["seed"], "generation": x["generation"],
                           "prediction": x["prediction"] or "(no answer)", **x["scores"]} for x in history])
    if table.empty:
        st.write("No prediction of the chosen arms and seeds for this question.")
        return
    if names:
        score = sel.one("score", "score to chart", names, default="f1", format_func=label)
        points = table[["arm", "seed", "generation", score]].rename(columns={score: "score"}).dropna()
        st.altair_chart(charts.scores_over_generations(points, title=f"{label(score)} of this question per generation",
                                                       y_title=label(score), arms=arms, colors=ctx.colors), width="stretch")
    st.dataframe(table, hide_index=True)
    st.caption("Each row: the answer of one arm's model of one generation (greedy decoding) and its per-example scores.")


def continuations(ctx: Context) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """A language-model run's prompts and what every generation wrote from them: (human
    block id -> its text, from the generation-0 training sets) and one row per continuation
    (arm, seed, generation, prompt, continuation). Every generation continues the same
    human blocks (tasks/lm.py `write_synthetic`), so a block id names one prompt across
    arms, seeds and generations."""
    files = sorted((f["arm"], f["seed"], f["generation"]) for f in ctx.source.data_files(ctx.run_id) if f["kind"] == "synthetic")
    order = {a: i for i, a in enumerate(ctx.arms)}
    rows = []
    for arm, seed, generation in sorted(files, key=lambda k: (order.get(k[0], len(order)), k[1], k[2])):
        for r in ctx.source.records(ctx.run_id, arm, seed, generation, "synthetic"):
            rows.append({"arm": arm, "seed": seed, "generation": generation, "prompt": r["parent_id"], "id": r["id"],
                         "continuation": r["text"] or ""})
    human: dict[str, str] = {}
    for f in ctx.source.data_files(ctx.run_id):
        if f["kind"] == "train" and f["generation"] == 0 and not human:
            human = {r["id"]: r["text"] or "" for r in ctx.source.records(ctx.run_id, f["arm"], f["seed"], 0, "train")
                     if r["source"] == "human"}
    return human, rows


def _prompt(ctx: Context) -> None:
    st.header(f"Prompt: {ctx.run_id}")
    try:
        human, rows = continuations(ctx)
    except CollapselabError as e:
        st.write(f"Cannot show the continuations: {e}")
        return
    if not rows:
        st.write("No generation of this run has recorded what it wrote yet.")
        return
    prompts = list(dict.fromkeys(r["prompt"] for r in rows))
    needle = sel.text("search", "search prompts", placeholder="words of the human text, or its id").strip().casefold()
    ids = [i for i in prompts if needle in human.get(i, "").casefold() or needle in i.casefold()]
    st.sidebar.caption(f"{len(ids)} of {len(prompts)} prompts match")
    if not ids:
        st.write(f"No prompt contains {needle!r}.")
        return
    prompt = sel.one("prompt", "prompt", ids, format_func=lambda i: f"{_short(human.get(i, i))} [{i}]")
    arms = sel.many("arms", "arms", [a for a in ctx.arms if any(r["arm"] == a for r in rows)])
    seeds = sel.many("seeds", "seeds", sorted({r["seed"] for r in rows}))
    chosen = [r for r in rows if r["prompt"] == prompt and r["arm"] in arms and r["seed"] in seeds]

    st.markdown(f"**The human text** `{prompt}` (its beginning is the prompt every generation continues):")
    st.text(human.get(prompt, "(not in the run's generation-0 training data)"))
    if not chosen:
        st.write("No continuation of this prompt by the chosen arms and seeds.")
        return
    table = pd.DataFrame(chosen).drop(columns=["prompt"])
    scored = {}
    for arm in arms:
        for (seed, generation), values in ctx.source.perplexities(ctx.run_id, arm).items():
            scored.update({(arm, seed, generation, i): v for i, v in values.items()})
    table["perplexity"] = [scored.get((r["arm"], r["seed"], r["generation"], r["id"])) for r in chosen]
    if table.perplexity.notna().any():
        points = table.dropna(subset=["perplexity"]).rename(columns={"perplexity": "score"})[["arm", "seed", "generation", "score"]]
        st.altair_chart(charts.scores_over_generations(points, title="Perplexity of this prompt's continuation under the generation-0 model",
                                                       y_title="perplexity (generation-0 model)", arms=arms, colors=ctx.colors),
                        width="stretch")
    else:
        table = table.drop(columns="perplexity")
    seed = seeds[0]
    side = table[table.seed == seed].pivot(index="generation", columns="arm", values="continuation")
    st.subheader(f"What each generation wrote (seed {seed})")
    st.table(side[[a for a in arms if a in side.columns]].rename(index=lambda g: f"generation {g}"))
    st.dataframe(table, hide_index=True)
    st.caption("Each row: one arm's model of one generation continuing this prompt (the run's decoding settings)"
               + ("; perplexity: of the continuation under the arm's generation-0 model." if "perplexity" in table else "."))

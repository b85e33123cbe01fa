"""Question: one test question, its references, and every generation's answer per arm."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from collapselab.dashboard import charts
from collapselab.dashboard import selection as sel
from collapselab.dashboard.views import Context
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
    st.header(f"Question: {ctx.run_id}")
    if not ctx.answers_questions:
        st.write(f"This is a {ctx.task} run: it has no test questions (its test set is scored text, see Generations).")
        return
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
                                                       y_title=label(score), arms=arms), width="stretch")
    st.dataframe(table, hide_index=True)
    st.caption("Each row: the answer of one arm's model of one generation (greedy decoding) and its per-example scores.")

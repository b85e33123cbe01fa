"""The report's opening: what happened in three lines, one prompt's continuation at
generation 0 and at the last generation for each arm, and how to read the metrics whose
direction of "better" inverts when a model collapses.
"""

from __future__ import annotations

import json
from pathlib import Path

from collapselab.metrics.registry import metric_info, metric_label
from collapselab.report.changes import Change, changes, model_parameters, resolution, verdict
from collapselab.report.criteria import three_arm_criteria
from collapselab.report.document import Document, Heading, Para, Table
from collapselab.report.outcomes import criteria_met, fmt, primary_metric, signed, summary
from collapselab.results import Generation, RunData
from collapselab.rundir.generation import SYNTHETIC, TRAIN

PREVIEW = 300  # characters of a prompt or a continuation shown


def pct(x: float | None) -> str:
    """A relative change: "+100 %", "+5.0 %", "-0.4 %"."""
    if x is None:
        return "no relative change (generation 0 is 0)"
    return f"{x:+.0f} %" if abs(x) >= 10 else f"{x:+.1f} %"


def what_happened(run: RunData, doc: Document, figdir: Path) -> None:
    """Three lines: the primary metric's move per arm, the verdict, what was run; then one
    prompt's continuation (or one question's answer) at generation 0 and at the end."""
    doc.add(Heading("What happened"))
    metric = primary_metric(run)
    moved = changes(run, metric)
    if run.three_arm is not None:
        lines = _three_arm_lines(run, metric)
    elif moved:
        lines = _recursive_lines(run, moved)
    else:
        lines = _single_generation_lines(run, metric)
    doc.add(*(Para(line) for line in [*lines, _context(run)]))
    _one_prompt(run, doc)


def _recursive_lines(run: RunData, moved: list[Change]) -> list[str]:
    # the arm that moved most the bad way first, in full; the others by their relative change
    order = sorted(moved, key=lambda c: -(c.relative or 0.0) * (-1 if c.higher_is_better else 1))
    head, rest = order[0], order[1:]
    first = (f"**`{head.arm}`**: {metric_label(head.metric)} {fmt(head.first.mean)} -> {fmt(head.last.mean)} "
             f"({pct(head.relative)}) in {run.last_generation} generation{'s' * (run.last_generation > 1)}"
             + "".join(f"; `{c.arm}` {pct(c.relative)}" for c in rest) + ".")
    res = resolution(run, head.metric)
    groups: dict[str, list[str]] = {}
    for c in moved:
        groups.setdefault(verdict(c, res), []).append(f"`{c.arm}`")
    noise = (f"Noise: the 95 % interval of each arm's change over {head.delta.n} seeds." if head.interval else
             f"Noise: one seed, so the test set's {res.text()}." if res else "One seed and no per-example scores: noise cannot be told.")
    direction = "higher" if head.higher_is_better else "lower"
    second = (f"{direction.capitalize()} is better. "
              + " ".join(f"{VERDICTS[word]}: {', '.join(arms)}." for word, arms in groups.items()) + f" {noise}")
    return [first, second]


VERDICTS = {"collapsed": "Collapsed (worse beyond noise)", "improved": "Improved (better beyond noise)", "held": "Held (within noise)"}


def _three_arm_lines(run: RunData, metric: str) -> list[str]:
    roles, g = run.three_arm, run.last_generation
    assert roles is not None
    c = three_arm_criteria(run)
    a = c.a.mean
    parts = [f"`{roles['human']}` {fmt(a)}"]
    for role, s in (("contaminated", c.b), ("synthetic", c.c)):
        parts.append(f"`{roles[role]}` {fmt(s.mean)} ({signed(s.mean - a)} vs the human arm)")
    first = f"{metric_label(c.metric)} at generation {g}: " + ", ".join(parts) + "."
    second = (f"Success criteria {'met' if criteria_met(c) else 'not met'}: C > B {'yes' if c.c_beats_b else 'no'}, "
              f"|C - A| <= {fmt(c.tolerance)} {'yes' if c.c_near_a else 'no'}"
              + (f"; recovery {fmt(c.recovery)} (1 = as good as human data, 0 = as bad as contaminated)." if c.recovery is not None else "."))
    return [first, second]


def _single_generation_lines(run: RunData, metric: str) -> list[str]:
    g = run.last_generation
    values = {a: s for a in run.arms if (s := summary(run, a, g, metric)) is not None}
    better = metric_info(metric).higher_is_better
    first = f"{metric_label(metric)} at generation {g}: " + ", ".join(f"`{a}` {fmt(s.mean)}" for a, s in values.items()) + "."
    if len(values) < 2:
        return [first]
    best = (max if better else min)(values, key=lambda a: values[a].mean)
    return [first, f"Best: `{best}` ({'higher' if better else 'lower'} is better)."]


def _context(run: RunData) -> str:
    cfg = run.cfg
    params = model_parameters(run)
    size = f"a {params:,}-parameter `{cfg.model.name}` model" if params is not None else f"the `{cfg.model.name}` model"
    n_test = len(run.predictions(run.gens[0]))
    seeds = len(run.seeds)
    return (f"{len(run.arms)} arms x {seeds} seed{'s' * (seeds > 1)} x {run.last_generation + 1} "
            f"generation{'s' * (run.last_generation > 0)} of {size} on `{cfg.data.dataset}`; every model scored on "
            f"the same {n_test} held-out human {run.task.test_unit}s.")


def _short(text: str, n: int = PREVIEW, *, tail: bool = False) -> str:
    text = " ".join((text or "").split())
    if len(text) <= n:
        return text
    return "…" + text[-(n - 1):] if tail else text[: n - 1] + "…"


def _one_of_each(run: RunData, generation: int) -> dict[str, Generation]:
    seed = run.seeds[0]
    return {a: found[0] for a in run.arms if (found := [g for g in run.find(a, generation) if g.seed == seed])}


def _one_prompt(run: RunData, doc: Document) -> None:
    """The same prompt (lm) or test question (qa) at generation 0 and at the last generation of each arm."""
    gens = sorted({0, run.last_generation})
    at = {g: _one_of_each(run, g) for g in gens}
    arms = [a for a in run.arms if all(a in at[g] for g in gens)]
    if not arms:
        return
    header = ["arm", *(f"generation {g}" for g in gens)]
    seed = run.seeds[0]
    if run.task.answers_questions:
        preds = {(a, g): {r["example_id"]: r for r in run.predictions(at[g][a])} for a in arms for g in gens}
        ids = [i for i in preds[(arms[0], gens[0])] if all(i in p for p in preds.values())]
        if not ids:
            return
        # a question whose answer differs somewhere, when there is one
        pick = next((i for i in ids if len({preds[k][i]["prediction"] for k in preds}) > 1), ids[0])
        row = preds[(arms[0], gens[0])][pick]
        question, _, _ = row["input"].partition("\n\n")
        refs = " / ".join(json.loads(row["reference"]) or ["(no answer)"])
        doc.add(Heading(f"One question, generation {' and '.join(map(str, gens))}", 3))
        doc.add(Para(f"Test question `{pick}` (seed {seed}): {_short(question)} Reference: {refs}."))
        doc.add(Table(header, [[f"`{a}`", *(_short(preds[(a, g)][pick]["prediction"]) or "(no answer)" for g in gens)] for a in arms]))
        return
    texts = {(a, g): {r.parent_id: r.text or "" for r in run.records(at[g][a], SYNTHETIC)} for a in arms for g in gens}
    ids = [i for i in texts[(arms[0], gens[0])] if all(i in t for t in texts.values())]
    if not ids:
        return
    pick = ids[0]
    human = {r.id: r.text or "" for r in run.records(at[gens[0]][arms[0]], TRAIN)}
    prompt_tokens = run.cfg.data.prompt_tokens
    prompt = (_short(human[pick], tail=True) if prompt_tokens is None else
              f"{_short(human[pick])} (its first {prompt_tokens} tokens are the prompt)") if pick in human else f"`{pick}`"
    doc.add(Heading(f"One prompt, generation {' and '.join(map(str, gens))}", 3))
    doc.add(Para(f"Human block `{pick}` (seed {seed}): {prompt}"))
    doc.add(Table(header, [[f"`{a}`", *(_short(texts[(a, g)][pick]) or "(empty)" for g in gens)] for a in arms],
                  caption="Each model's continuation of that prompt (the run's decoding settings)"))


# metric -> how it moves as a model collapses, and why that is not an improvement
UNDER_COLLAPSE: dict[str, str] = {
    "synthetic_perplexity": "falls: later generations write text the generation-0 model finds more probable (its common phrases), not better text",
    "external_synthetic_perplexity": "falls: the texts become probable, repetitive phrasing that any language model scores as likely",
    "external_surprisal": "falls, as the external perplexity does: probable, repetitive text",
    "gibberish_score": "rises: repeated common words and phrases look more like language to the scorer, not less",
    "gibberish_rate": "falls, as the gibberish score rises: fluent repetition is not gibberish",
    "duplicate_rate": "rises: the same texts written again, the repetition the metrics above reward",
}


def under_collapse(run: RunData, doc: Document, figdir: Path) -> None:
    """A short note on the synthetic-data metrics whose "better" direction inverts under
    collapse (Shumailov et al., Nature 2024); present when the run recorded one of them
    over several generations."""
    present = [m for m in UNDER_COLLAPSE if m in run.metric_names]
    if not run.recursive or not present:
        return
    doc.add(Heading("How to read these metrics under collapse"))
    doc.add(Para("A collapsing model writes probable, repetitive text that loses the tails of the human distribution "
                 "(Shumailov et al., Nature 2024). Metrics of that synthetic text can then move the way their registered "
                 "direction calls better: read them beside the test metrics, not as an improvement."))
    last = run.last_generation
    rows = []
    for m in present:
        moved = changes(run, m)
        direction = "higher is better" if metric_info(m).higher_is_better else "lower is better"
        here = "; ".join(f"`{c.arm}` {fmt(c.first.mean)} -> {fmt(c.last.mean)}" for c in moved) or "not at both ends"
        rows.append([metric_label(m), direction, UNDER_COLLAPSE[m], here])
    doc.add(Table(["metric", "registered as", "under collapse it", f"this run, generation 0 -> {last}"], rows))

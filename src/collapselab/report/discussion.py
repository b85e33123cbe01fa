"""The report's discussion, generated from the run: "Findings" (plain sentences, each citing
the figure or table and the interval behind it) and "Limitations" (the run's own facts:
seeds, model size, test-set resolution, metrics at chance or saturated, filters that
rejected most candidates).

Every number written here is a metric of the run, a mean, difference or interval of its
metrics (over seeds, or a paired bootstrap over test examples), or a count the run
recorded; tests/unit/report/test_discussion.py holds it to that.
"""

from __future__ import annotations

import re
from pathlib import Path

from collapselab.metrics.mmlu import CHANCE
from collapselab.metrics.registry import display, metric_info, metric_label
from collapselab.metrics.stats import BootstrapResult
from collapselab.report.changes import (
    Change,
    beyond_noise,
    changes,
    model_parameters,
    resolution,
    verdict,
)
from collapselab.report.criteria import paired, three_arm_criteria
from collapselab.report.document import Document, Heading, Para
from collapselab.report.headline import UNDER_COLLAPSE, pct
from collapselab.report.outcomes import (
    REFERENCE_LINES,
    TEST_CURVES,
    criteria_met,
    fmt,
    primary_metric,
    sentence,
    signed,
    summary,
    valued,
    varying,
)
from collapselab.results import RunData

MOST = 0.5  # a filter that rejected more than this share of what it checked is a limitation


def findings(run: RunData, doc: Document, figdir: Path) -> None:
    """What the run found, sentence by sentence, each with its figure and interval."""
    found: list[str] = []
    if run.three_arm is not None:
        found += _three_arm(run)
    if run.recursive:
        found += _recursive(run)
    elif run.three_arm is None:
        found += _one_generation(run)
    if not found:
        return
    doc.add(Heading("Findings"))
    doc.add(*(Para(f"- {s}") for s in found))


def _interval(r: BootstrapResult) -> str:
    where = "excludes" if r.ci_low > 0 or r.ci_high < 0 else "includes"
    return f"{signed(r.difference)}, paired bootstrap over test questions [95 % CI {fmt(r.ci_low)}, {fmt(r.ci_high)}], which {where} zero"


def _three_arm(run: RunData) -> list[str]:
    roles = run.three_arm
    assert roles is not None
    c = three_arm_criteria(run)
    m, g = c.metric, run.last_generation
    label = display(m)[0]
    a, b, s = roles["human"], roles["contaminated"], roles["synthetic"]
    figure = f"figure: {metric_label(m)} by arm, generation {g}"
    out = []
    b_minus_a = paired(run, b, a, m)
    lost = f"Contaminated data: `{b}` scores {label} {valued(m, c.b.mean)} against {valued(m, c.a.mean)} for human data (`{a}`)"
    out.append(lost + (f"; B - A = {_interval(b_minus_a)}" if b_minus_a else "") + f" ({figure}).")
    synthetic = f"Filtered synthetic data: `{s}` scores {valued(m, c.c.mean)}"
    parts = [f"C - B = {_interval(c.c_minus_b)}" if c.c_minus_b else f"C - B = {signed(c.c.mean - c.b.mean)}",
             f"C - A = {_interval(c.c_minus_a)}" if c.c_minus_a else f"C - A = {signed(c.c.mean - c.a.mean)}"]
    out.append(f"{synthetic}; {'; '.join(parts)} (table: Success criteria).")
    recovery = f"; recovery {fmt(c.recovery)}" if c.recovery is not None else "; A = B, so nothing was lost to recover"
    out.append(f"Success criteria (`refinery.success`, {label}, tolerance {fmt(c.tolerance)}) {'met' if criteria_met(c) else 'not met'}: "
               f"C > B {'met' if c.c_beats_b else 'not met'}, |C - A| <= {fmt(c.tolerance)} {'met' if c.c_near_a else 'not met'}"
               f"{recovery} (table: Success criteria).")
    return out


def _change_sentence(c: Change, run: RunData, figure: str) -> str:
    res = resolution(run, c.metric)
    word = verdict(c, res)
    m = c.metric
    text = (f"`{c.arm}` {word}: {display(m)[0]} {valued(m, c.first.mean)} at generation 0, {valued(m, c.last.mean)} "
            f"at generation {run.last_generation} ({pct(c.relative)})")
    if c.interval:
        where = "excludes" if c.excludes_zero else "includes"
        text += (f"; the change per seed, {signed(c.delta.mean)} [95 % CI {fmt(c.delta.ci_low)}, {fmt(c.delta.ci_high)}] "
                 f"over {c.delta.n} seeds, {where} zero")
    elif res is not None:
        text += (f"; one seed, so no interval over seeds: the change is {'beyond' if beyond_noise(c, res) else 'within'} "
                 f"the {res.text()} the test set resolves")
    else:
        text += "; one seed and no per-example scores, so no interval"
    return f"{text} ({figure})."


def _recursive(run: RunData) -> list[str]:
    metric, g = primary_metric(run), run.last_generation
    plotted, _ = varying(run, [metric], list(range(g + 1)))
    figure = f"figure: {TEST_CURVES}" if plotted else "table: Every metric per generation"
    moved = changes(run, metric)
    out = [_change_sentence(c, run, figure) for c in moved]
    if len(moved) > 1 and len({fmt(c.last.mean) for c in moved}) == 1:
        out.append(f"At generation {g}, every arm has the same {display(metric)[0]}, {valued(metric, moved[0].last.mean)} "
                   "(table: Main results).")
    elif len(moved) > 1:
        better = metric_info(metric).higher_is_better
        ranked = sorted(moved, key=lambda c: c.last.mean, reverse=better)
        best, worst = ranked[0], ranked[-1]
        text = (f"At generation {g}, `{best.arm}` has the best {display(metric)[0]}, {valued(metric, best.last.mean)}, and "
                f"`{worst.arm}` the worst, {valued(metric, worst.last.mean)}")
        if best.last.n > 1:
            apart = best.last.ci_low > worst.last.ci_high if better else best.last.ci_high < worst.last.ci_low
            text += (f"; their 95 % intervals over seeds, [{fmt(best.last.ci_low)}, {fmt(best.last.ci_high)}] and "
                     f"[{fmt(worst.last.ci_low)}, {fmt(worst.last.ci_high)}], {'do not overlap' if apart else 'overlap'}")
        out.append(f"{text} (table: Main results).")
    for other in [m for m in run.task.main_metrics if m != metric and m in run.metric_names]:
        moves = changes(run, other)
        if moves:
            out.append(f"{sentence(display(other)[0])} from generation 0 to {g}: "
                       + ", ".join(f"`{c.arm}` {pct(c.relative)}" for c in moves) + " (table: Every metric per generation).")
    if "mmlu_accuracy" in run.metric_names:
        moves = changes(run, "mmlu_accuracy")
        out.append("MMLU accuracy from generation 0 to the last: " + ", ".join(
            f"`{c.arm}` {fmt(c.first.mean)} -> {fmt(c.last.mean)}" for c in moves) + " (table: Knowledge retention and collapse stages).")
    stages = _stages(run)
    if stages:
        out.append(f"Collapse stage at generation {g} (`evaluation.stages`: A knowledge kept, B fluent but wrong, C collapsed): "
                   + ", ".join(stages) + " (table: Knowledge retention and collapse stages).")
    if any(m in run.metric_names for m in UNDER_COLLAPSE):
        out.append("The synthetic-data metrics move as collapse predicts; how to read them is under "
                   "\"How to read these metrics under collapse\".")
    return out


def _stages(run: RunData) -> list[str]:
    out = []
    for arm in run.arms:
        found = [(g.seed, g.doc["metrics"]["collapse_stage"]["details"]["stage"]) for g in run.final(arm)
                 if "collapse_stage" in g.doc["metrics"]]
        if found:
            out.append(f"`{arm}` " + "/".join(stage for _, stage in found) + (" (seeds " + "/".join(str(s) for s, _ in found) + ")" if len(found) > 1 else ""))
    return out


def _one_generation(run: RunData) -> list[str]:
    metric, g = primary_metric(run), run.last_generation
    values = {a: s for a in run.arms if (s := summary(run, a, g, metric)) is not None}
    if len(values) < 2:
        return []
    better = metric_info(metric).higher_is_better
    ranked = sorted(values, key=lambda a: values[a].mean, reverse=better)
    best, worst = ranked[0], ranked[-1]
    return [f"At generation {g}, `{best}` has the best {display(metric)[0]}, {valued(metric, values[best].mean)}, and "
            f"`{worst}` the worst, {valued(metric, values[worst].mean)} (figure: {metric_label(metric)} by arm, generation {g})."]


# ---------------------------------------------------------------- limitations


def limitations(run: RunData, doc: Document, figdir: Path) -> None:
    """What limits the run's conclusions, from its own facts."""
    out = [_seeds(run), *_model(run), *_test_set(run), *_at_chance(run), *_saturated(run), *_filters(run)]
    doc.add(Heading("Limitations"))
    doc.add(*(Para(f"- {s}") for s in out))


def _seeds(run: RunData) -> str:
    n = len(run.seeds)
    if n == 1:
        return (f"One seed ({run.seeds[0]}): every value is one training run, so the report has no interval over seeds, "
                "and a difference between arms or generations may be seed noise; two seeds or more (`experiment.seeds`) "
                "give 95 % intervals.")
    return (f"{n} seeds: 95 % intervals over seeds have {n - 1} degree{'s' * (n > 2)} of freedom"
            + (", so they are wide; more seeds narrow them." if n < 5 else "."))


def _model(run: RunData) -> list[str]:
    params = model_parameters(run)
    if params is None:
        return []
    return [f"Model size: {params:,} parameters (`{run.cfg.model.name}`); how a larger model collapses may differ."]


def _test_set(run: RunData) -> list[str]:
    metric = primary_metric(run)
    n = len(run.predictions(run.gens[0]))
    unit = run.task.test_unit
    res = resolution(run, metric)
    text = f"Test set: {n} held-out human {unit}s"
    if res is None:
        return [text + "."]
    return [text + f"; generation 0's {display(metric)[0]} per {unit} averages {fmt(res.mean)}, known to {res.text()} "
                   "(95 % interval of a mean over these examples): a difference smaller than that is within the test set's "
                   "sampling noise."]


def _at_chance(run: RunData) -> list[str]:
    """A model no better than its no-context baseline (lm: the unigram perplexity)."""
    out = []
    for metric, lines in REFERENCE_LINES.items():
        for ref, what in lines:
            if ref != "unigram_perplexity" or metric not in run.metric_names:
                continue
            model, base = summary(run, run.arms[0], 0, metric), summary(run, run.arms[0], 0, ref)
            if model is not None and base is not None and model.mean >= base.mean:
                out.append(f"At chance: generation 0's test {display(metric)[0]}, {fmt(model.mean)}, is no better than the "
                           f"{what}'s, {fmt(base.mean)}: the model learned little beyond word frequencies, so its decline "
                           "says little about a model that learned the language.")
    if "mmlu_accuracy" in run.metric_names:
        s = summary(run, run.arms[0], 0, "mmlu_accuracy")
        if s is not None and s.mean <= CHANCE + run.cfg.evaluation.stages.chance_margin:
            out.append(f"At chance: generation 0's MMLU accuracy, {fmt(s.mean)}, is no better than guessing among four "
                       "choices: there is no knowledge to lose, so the collapse stages say little.")
    return out



def _scale(metric: str) -> tuple[float, float] | None:
    """(floor, ceiling) of a metric on a bounded scale, from its registered unit ("%", "0-1",
    "share"); None when unbounded (perplexity, counts)."""
    unit = display(metric)[1]
    if unit == "%":
        return 0.0, 100.0
    if "share" in unit:
        return 0.0, 1.0
    m = re.search(r"\b0-(\d+)\b", unit)
    return (0.0, float(m.group(1))) if m else None


def _saturated(run: RunData) -> list[str]:
    """The task's main metrics that cannot show a difference: the same value everywhere, or
    at the floor or ceiling of their scale."""
    flat, edge = [], []
    for m in [m for m in run.task.main_metrics if m in run.metric_names]:
        values = [v for g in run.gens if (v := g.metrics.get(m)) is not None]
        if len(values) < 2 or max(values) != min(values):
            continue
        scale = _scale(m)
        if scale is not None and values[0] in scale:
            edge.append(f"{display(m)[0]} {valued(m, values[0])} ({'floor' if values[0] == scale[0] else 'top'} of its scale)")
        else:
            flat.append(f"{display(m)[0]} {valued(m, values[0])}")
    if not flat and not edge:
        return []
    return [f"Saturated: {', '.join(edge + flat)}, the same for every arm, seed and generation: "
            f"{'this metric does' if len(flat + edge) == 1 else 'these metrics do'} not move in this run, so cannot show a difference."]


def _filters(run: RunData) -> list[str]:
    """Refinery builds whose filters rejected more than half of the candidates (naming the
    filters that did), and builds that fell short of their target."""
    out = []
    for g in run.gens:
        stats = g.refinery
        if not stats:
            continue
        build = f"`{g.arm}` (seed {g.seed})"
        rejected = stats.get("rejected") or {}
        if stats["attempts"] and sum(rejected.values()) / stats["attempts"] > MOST:
            by_filter = [f"`{name}` {f['rejected']} of {f['checked']}" for name in stats.get("filter_order", sorted(stats.get("filters", {})))
                         if (f := stats["filters"][name])["rejected"]]
            out.append(f"Refinery: its filters rejected {sum(rejected.values())} of the {stats['attempts']} candidates for {build}, "
                       f"more than half ({', '.join(by_filter)} checked): the kept data is a narrow selection of what the "
                       "generator wrote (table: Refinery and filter effectiveness).")
        used, target = stats.get("used", stats["passed"]), stats.get("target")
        if target and used < target:
            out.append(f"Refinery: {build} trained on {used} records, {target - used} short of its target of {target}: "
                       "it saw less data than a full build would have (table: Refinery and filter effectiveness).")
    return out

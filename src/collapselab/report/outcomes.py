"""Report sections about results: overview, success criteria, main table, comparisons,
and every metric per generation (recursive runs). A section that does not apply to the run
(success criteria without three arms, curves with one generation) adds nothing.

Every section has the signature `(run, doc, figdir)` (the report's `SECTIONS`)."""

from __future__ import annotations

import math
from pathlib import Path

from collapselab.metrics.registry import (
    EXTERNAL_DEFAULTS,
    SYNTHETIC_DEFAULTS,
    display,
    metric_label,
)
from collapselab.metrics.stats import Summary, summarize
from collapselab.report import figures
from collapselab.report.criteria import Criteria, three_arm_criteria
from collapselab.report.data import MIN_HISTOGRAM_TEXTS, per_sequence_values, perplexity_histograms
from collapselab.report.document import Document, Figure, Heading, Para, Table
from collapselab.report.palette import arm_colors
from collapselab.results import RunData

# metric -> (run-level or generation-0-only metric, label): drawn as a dashed line on its panel
REFERENCE_LINES: dict[str, list[tuple[str, str]]] = {
    "perplexity": [("unigram_perplexity", "unigram model")],
    "external_synthetic_perplexity": [("external_test_perplexity", "human test text")],
    "external_surprisal": [("external_test_surprisal", "human test text")],
}
SYNTHETIC_METRICS = {*SYNTHETIC_DEFAULTS, *EXTERNAL_DEFAULTS}  # metrics of what a generation wrote
# Shown in their own section (knowledge_and_stages), not as per-generation curves.
STAGE_METRICS = ("collapse_stage",)


MMLU_PARTS = ("mmlu_accuracy.", "mmlu_")  # per group / subject / extra format: the MMLU section's
# Titles of the figures the Findings cite.
TEST_CURVES = "Held-out human test metrics per generation"
SYNTHETIC_CURVES = "Synthetic data per generation (what each generation wrote)"


def fmt(x: float | None, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "not defined"
    return f"{x:,.{digits}f}"


def signed(x: float | None, digits: int = 2) -> str:
    """A difference, its sign always written: "+4.37", "-0.40"."""
    if x is None or not math.isfinite(x):
        return "not defined"
    return f"{x:+,.{digits}f}"


def valued(metric: str, x: float | None) -> str:
    """A metric's value as prose writes it: "25.00 %" for a percentage, else the number."""
    return fmt(x) + (" %" if display(metric)[1] == "%" and x is not None else "")


def cell(s: Summary | None) -> str:
    """A table cell: the mean over seeds, ± the 95 % CI half-width with two seeds or more
    (the caption, or the Overview's one-seed note, says over how many)."""
    if s is None:
        return "not computed"
    if s.n == 1:
        return fmt(s.mean)
    return f"{fmt(s.mean)} ± {fmt(s.ci_high - s.mean)}"


def over_seeds(run: RunData) -> str:
    """How a table's values are aggregated, for its caption."""
    n = len(run.seeds)
    return "one seed" if n == 1 else f"mean over {n} seeds ± 95 % CI half-width"


def sentence(text: str) -> str:
    """`text` with its first letter upper case (the rest as it is: "CI" stays "CI")."""
    return text[:1].upper() + text[1:]


def colors(run: RunData) -> dict[str, str]:
    """Every arm of the run's config -> its colour (the dashboard colours arms the same way)."""
    return arm_colors([a.name for a in run.cfg.arms])


def summary(run: RunData, arm: str, generation: int, metric: str) -> Summary | None:
    v = run.values(arm, generation, metric)
    return summarize(v) if v else None


def primary_metric(run: RunData) -> str:
    return run.task.primary_metric(run.cfg)


def percent(run: RunData, metric: str) -> bool:
    """The metric is on a 0-100 scale (shown /100 beside 0-1 ones)."""
    return metric in run.task.percent_metrics


def overview(run: RunData, doc: Document, figdir: Path) -> None:
    cfg, m = run.cfg, run.manifest
    kind = "three-arm refinery comparison" if run.three_arm else ("recursive (self-consuming) run" if run.recursive else "single-generation run")
    arms = ", ".join(f"`{a.name}` (data {a.data}, init {a.init}, mix {a.mix}"
                     + "".join(f", {s.mix}{'' if s.ratio is None else f' {s.ratio}'} from generation {s.generation}" for s in a.schedule)
                     + (", data written by the refinery's generator" if a.writer == "generator" else "") + ")"
                     for a in cfg.arms if a.name in run.arms)
    doc.add(Heading("Overview"), Para(
        f"Experiment **{cfg.experiment.name}**, run `{m['run_id']}` ({kind}), task `{cfg.experiment.task}` on `{cfg.data.dataset}`; "
        f"{len(run.arms)} arms: {arms}. Generations finished: {run.last_generation + 1} of {cfg.experiment.generations}; "
        f"seeds {run.seeds}. Every model is evaluated on the same held-out human test set."))
    if len(run.seeds) == 1:
        doc.add(Para(f"One seed ({run.seeds[0]}): every value is one training run, so no interval or error bar is shown; "
                     "two seeds or more (`experiment.seeds`) give 95 % confidence intervals of the mean."))
    else:
        doc.add(Para(f"Values are means over {len(run.seeds)} seeds; ± and error bars or bands are 95 % confidence intervals "
                     "of the mean over seeds (t distribution)."))


def success_criteria(run: RunData, doc: Document, figdir: Path) -> None:
    """The A/B/C verdict of a three-arm refinery run (absent from any other run)."""
    if run.three_arm is None:
        return
    doc.add(Heading("Success criteria (A human, B contaminated, C synthetic)"))
    c = three_arm_criteria(run)
    arms, verdict = criteria_rows(c, run.three_arm)
    doc.add(Table(["arm", metric_label(c.metric)], arms, caption=f"{metric_label(c.metric)} at the final generation, {over_seeds(run)}"))
    doc.add(Table(["criterion", "result", "detail"], verdict))
    doc.add(Para(f"**Verdict: {'met' if criteria_met(c) else 'not met'}** on {metric_label(c.metric)} (tolerance {fmt(c.tolerance)}, `refinery.success`)."))


def criteria_met(c: Criteria) -> bool:
    return c.c_beats_b and c.c_near_a


def criteria_rows(c: Criteria, roles: dict[str, str]) -> tuple[list[list[str]], list[list[str]]]:
    """The success criteria as table rows (the report and the dashboard show the same):
    [arm, value] per role A/B/C, and [criterion, result, detail] per criterion."""
    arms = [[f"A = `{roles['human']}`", cell(c.a)], [f"B = `{roles['contaminated']}`", cell(c.b)], [f"C = `{roles['synthetic']}`", cell(c.c)]]
    verdict = [
        ["C > B", "yes" if c.c_beats_b else "no", f"C - B = {fmt(c.c.mean - c.b.mean)}"],
        [f"|C - A| <= {fmt(c.tolerance)}", "yes" if c.c_near_a else "no", f"C - A = {fmt(c.c.mean - c.a.mean)}"],
        ["recovery (C - B) / (A - B)", fmt(c.recovery), "1 = as good as human data, 0 = as bad as contaminated" if c.recovery is not None else "A = B: nothing lost to recover"],
    ]
    for name, r in (("C - B", c.c_minus_b), ("C - A", c.c_minus_a)):
        if r is not None:
            verdict.append([f"paired bootstrap {name} (per question)", f"{fmt(r.difference)} [{fmt(r.ci_low)}, {fmt(r.ci_high)}]", f"p = {fmt(r.p_value, 3)}, {r.n_resamples} resamples"])
    return arms, verdict


def main_table(run: RunData, doc: Document, figdir: Path) -> None:
    metrics = list(run.task.main_metrics)
    g = run.last_generation
    doc.add(Heading("Main results"))
    rows = [[f"`{arm}`", run.data_kind[arm]] + [cell(summary(run, arm, g, m)) for m in metrics] for arm in run.arms]
    doc.add(Table(["arm", "data"] + [metric_label(m) for m in metrics], rows, caption=f"Held-out human test set, generation {g}, {over_seeds(run)}"))
    missing = [m for m in metrics if m not in run.metric_names]
    if missing:
        doc.add(Para(f"Not computed in this run (not in `evaluation.metrics`): {', '.join(missing)}."))


def comparisons(run: RunData, doc: Document, figdir: Path) -> None:
    g, arms = run.last_generation, run.arms
    primary = primary_metric(run)
    doc.add(Heading(f"{display(primary)[0]} comparison"))
    sums = [summary(run, a, g, primary) for a in arms]
    if any(s is None for s in sums):
        doc.add(Para(f"{metric_label(primary)} was not computed for every arm."))
    else:
        path = figures.bar_comparison(arms, sums, metric_label(primary), f"{metric_label(primary)} by arm, generation {g}",
                                      figdir / "primary.png", colors(run))
        doc.add(Figure(path, f"{metric_label(primary)} per arm at generation {g}" + _bars_note(run) + "."))
    metrics = [m for m in run.task.main_metrics if all(summary(run, a, g, m) for a in arms)]
    if run.task.percent_metrics and metrics:  # scores that share one 0-1 scale
        doc.add(Heading("All main metrics"))
        scaled = {a: [_scale(summary(run, a, g, m), 0.01 if percent(run, m) else 1.0) for m in metrics] for a in arms}
        path = figures.grouped_bars([display(m)[0] for m in metrics], arms, scaled, "score (0-1; EM and F1 divided by 100)",
                                    f"Main metrics by arm, generation {g}", figdir / "metrics.png", colors(run))
        doc.add(Figure(path, "Every main metric on one 0-1 scale" + _bars_note(run) + "."))
    if metrics:
        _gap(run, doc, figdir, metrics)


def _bars_note(run: RunData) -> str:
    return "; error bars: 95 % CI over seeds" if len(run.seeds) > 1 else ""


def _scale(s: Summary | None, k: float) -> Summary:
    assert s is not None
    return Summary(s.mean * k, s.std * k, s.ci_low * k, s.ci_high * k, s.n)


def _diff(x: Summary, base: Summary) -> Summary:
    # Differences of means; the interval is that of x shifted (arms are separate trainings).
    return Summary(x.mean - base.mean, x.std, x.ci_low - base.mean, x.ci_high - base.mean, x.n)


def _gap(run: RunData, doc: Document, figdir: Path, metrics: list[str]) -> None:
    """Each arm against its human baseline: the human arm (three-arm runs) or its own
    generation 0 (recursive runs); absent from a one-generation run with neither."""
    g = run.last_generation
    roles = run.three_arm
    if roles is None and not run.recursive:
        return
    doc.add(Heading("Gap to the human baseline"))
    if roles is not None:
        base_arm = roles["human"]
        arms = [a for a in run.arms if a != base_arm]
        values = {a: [_diff(summary(run, a, g, m), summary(run, base_arm, g, m)) for m in metrics] for a in arms}
        what = f"arm minus the human arm `{base_arm}` at generation {g}"
    elif run.recursive:
        arms = run.arms
        values = {a: [_diff(summary(run, a, g, m), summary(run, a, 0, m)) for m in metrics] for a in arms}
        what = f"generation {g} minus generation 0 (trained on human data) of the same arm"
    rows = [[f"`{a}`"] + [fmt(v.mean) for v in values[a]] for a in arms]
    doc.add(Table(["arm"] + [metric_label(m) for m in metrics], rows, caption=f"Gap: {what}, in each metric's units"))
    if figures.all_equal([v.mean for a in arms for v in values[a]] + [0.0]):
        doc.add(Para(f"No difference: every gap ({what}) is 0 in every metric, so there is nothing to plot."))
        return
    if run.task.percent_metrics:  # one 0-1 scale, so EM/F1 (0-100) do not dwarf ROUGE
        plotted = {a: [_scale(v, 0.01 if percent(run, m) else 1.0) for v, m in zip(values[a], metrics, strict=True)] for a in arms}
        ylabel = "difference (0-1 scale; EM and F1 divided by 100)"
    else:  # perplexities and rates: relative change
        ref = {a: [summary(run, base_arm if roles else a, 0 if not roles else g, m) for m in metrics] for a in arms}
        plotted = {a: [_scale(v, 100.0 / abs(r.mean) if r and r.mean else 0.0) for v, r in zip(values[a], ref[a], strict=True)] for a in arms}
        ylabel = "relative change (%)"
    path = figures.grouped_bars([display(m)[0] for m in metrics], arms, plotted, ylabel,
                                f"Gap to the human baseline ({'human arm' if roles else 'generation 0'})", figdir / "gap.png",
                                colors(run), zero_line=True)
    doc.add(Figure(path, f"{what[0].upper()}{what[1:]}; below zero is worse for higher-is-better metrics (EM, F1, ROUGE, BERTScore), "
                         "better for perplexity."))


def varying(run: RunData, names: list[str], gens: list[int]) -> tuple[list[str], dict[str, str]]:
    """Split metrics into those that vary per generation (plotted) and the rest, each with
    why it is not plotted: measured at one generation only (e.g. the unigram baseline), or
    the same at every generation of each arm and seed (e.g. reference_perplexity: generation
    0's own perplexity again)."""
    plotted, kept_out = [], {}
    for m in names:
        at = {g: v for g in gens if (v := [x for a in run.arms for x in run.values(a, g, m)])}
        flat = [x for v in at.values() for x in v]
        if not flat:
            continue
        shown = fmt(flat[0]) if figures.all_equal(flat) else f"{fmt(min(flat))} to {fmt(max(flat))} across arms and seeds"
        if len(at) == 1:
            kept_out[m] = f"generation {next(iter(at))} only: {shown}"
        elif all(figures.all_equal([g.metrics[m] for g in run.gens if g.arm == a and g.seed == s and g.metrics.get(m) is not None])
                 for a in run.arms for s in run.seeds):
            kept_out[m] = f"the same at every generation of each arm and seed: {shown}"
        else:
            plotted.append(m)
    return plotted, kept_out


def reference_lines(run: RunData, plotted: list[str]) -> dict[str, list[tuple[str, float]]]:
    """metric -> (label, value) of the dashed lines on its panel: a yardstick computed once
    per run (run_metrics.json), else a baseline measured at generation 0 only (mean over arms
    and seeds)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for m in plotted:
        for ref, what in REFERENCE_LINES.get(m, []):
            value = (run.run_metrics.get(ref) or {}).get("value")
            if value is None:
                vals = [x for a in run.arms for x in run.values(a, 0, ref)]
                value = sum(vals) / len(vals) if vals else None
            if value is not None:
                out.setdefault(m, []).append((what, float(value)))
    return out


def yardsticks(run: RunData, doc: Document, figdir: Path) -> None:
    """The metrics computed once per run: the fixed yardsticks every generation is read against."""
    if not run.run_metrics:
        return
    rows = []
    for name, r in run.run_metrics.items():
        d = r.get("details") or {}
        spread = f"mean {fmt(d['mean'])}, p90 {fmt(d['p90'])}, p99 {fmt(d['p99'])}" if "p90" in d else ""
        rows.append([metric_label(name), fmt(r["value"], 3), f"`{d.get('scored_by')}`", f"{d.get('sequences')} of {d.get('of')}", spread])
    doc.add(Table(["yardstick (computed once per run)", "value", "scored by", "texts scored", "spread"], rows,
                  caption="The human test set under the external reference model: what human text scores on the same scale as "
                          "each generation's synthetic data"))


def per_generation(run: RunData, doc: Document, figdir: Path) -> None:
    """Every metric per generation as a table; drawn are only the metrics that vary per
    generation, with their baselines and yardsticks as dashed lines. A one-generation run
    has no curves: only its yardsticks, when it has any."""
    if not run.recursive:
        if run.run_metrics:
            doc.add(Heading("Yardsticks"))
            yardsticks(run, doc, figdir)
        return
    doc.add(Heading("Every metric per generation"))
    gens = list(range(run.last_generation + 1))
    names = [m for m in run.metric_names if m not in STAGE_METRICS and (m == "mmlu_accuracy" or not m.startswith(MMLU_PARTS))]
    series = {m: {a: [summary(run, a, g, m) for g in gens] for a in run.arms} for m in names}
    rows = [[metric_label(m), f"`{a}`"] + [cell(s) for s in series[m][a]] for m in names for a in run.arms]
    doc.add(Table(["metric", "arm"] + [f"gen {g}" for g in gens], rows, caption=sentence(over_seeds(run))))
    yardsticks(run, doc, figdir)
    plotted, kept_out = varying(run, names, gens)
    if kept_out:
        doc.add(Table(["metric", "not plotted: why"], [[metric_label(m), why] for m, why in kept_out.items()],
                      caption="Only what varies per generation is drawn; a baseline measured once is a dashed line on its panel"))
    references = reference_lines(run, plotted)
    test = [m for m in plotted if m not in SYNTHETIC_METRICS]
    synthetic = [m for m in plotted if m in SYNTHETIC_METRICS]
    for key, chosen, title in (("test", test, TEST_CURVES), ("synthetic", synthetic, SYNTHETIC_CURVES)):
        if not chosen:
            continue
        panels = [(m, display(m)[0], display(m)[1] or "value") for m in chosen]
        path = figures.per_generation(panels, series, gens, title, figdir / f"generations-{key}.png", colors(run), references)
        dashed = [f"{what} on the {display(m)[0]} panel" for m in chosen for what, _ in references.get(m, [])]
        doc.add(Figure(path, title + ("; shaded: 95 % CI over seeds" if len(run.seeds) > 1 else "")
                       + (f"; dashed: {', '.join(dashed)} (named at the axis edge when far from the curves)" if dashed else "") + "."))
    histograms(run, doc, figdir)


# per-sequence metric -> the run-level metric whose per-sequence values are its human reference
HISTOGRAMS: dict[str, str | None] = {"synthetic_perplexity": None, "external_synthetic_perplexity": "external_test_perplexity"}


def histograms(run: RunData, doc: Document, figdir: Path) -> None:
    """Per-sequence perplexity of each generation's synthetic data, generations overlaid
    (Shumailov et al. 2024, Fig. 1): the tail that grows, not only the median that moves.
    Only generations with `MIN_HISTOGRAM_TEXTS` texts (seeds pooled) are drawn: a
    histogram of a few dozen texts in 30 bins is noise."""
    import numpy as np

    for metric, ref in HISTOGRAMS.items():
        found = {a: per_sequence_values(run, a, metric) for a in run.arms}
        by_arm = {a: {g: v for g, v in by_gen.items() if len(v) >= MIN_HISTOGRAM_TEXTS} for a, by_gen in found.items()}
        by_arm = {a: v for a, v in by_arm.items() if v}
        if not by_arm:
            counts = sorted({len(v) for by_gen in found.values() for v in by_gen.values()})
            if counts:
                doc.add(Para(f"No histogram of per-sequence {display(metric)[0]}: {' to '.join(map(str, sorted({counts[0], counts[-1]})))} "
                             f"texts per generation (seeds pooled), fewer than the {MIN_HISTOGRAM_TEXTS} a histogram needs."))
            continue
        human = ((run.run_metrics.get(ref) or {}).get("details") or {}).get("per_sequence") if ref else None
        panels = {}
        for a, v in by_arm.items():
            h = perplexity_histograms(v, reference=human)
            panels[a] = (np.array(h.edges), {g: np.array(x) for g, x in h.share.items()},
                         None if h.reference is None else np.array(h.reference))
        name, unit = display(metric)
        path = figures.sequence_histograms(panels, f"per-sequence perplexity ({unit.split(', ', 2)[-1]}, log scale)",
                                           f"{name}: every generation's texts", figdir / f"histogram-{metric}.png")
        doc.add(Figure(path, f"Per-sequence {name} of each generation's synthetic texts (seeds pooled), share per log-spaced bin"
                             + ("; dashed: the human test texts under the same model" if human else "") + "."))


def knowledge_and_stages(run: RunData, doc: Document, figdir: Path) -> None:
    """MMLU accuracy by group per generation, and the collapse stage A/B/C of every
    generation; absent when the run has neither."""
    staged = [g for g in run.gens if "collapse_stage" in g.doc["metrics"]]
    if "mmlu_accuracy" not in run.metric_names and not staged:
        return
    doc.add(Heading("Knowledge retention and collapse stages"))
    gens = list(range(run.last_generation + 1))
    groups = sorted({m for m in run.metric_names if m.startswith("mmlu_accuracy.group.")})
    if "mmlu_accuracy" in run.metric_names:
        rows = []
        for arm in run.arms:
            for m in ["mmlu_accuracy", *groups]:
                name = "all questions" if m == "mmlu_accuracy" else m.removeprefix("mmlu_accuracy.group.").replace("_", " ")
                rows.append([f"`{arm}`", name] + [cell(summary(run, arm, g, m)) for g in gens])
        fmt_ = run.cfg.evaluation.mmlu.formats[0] if run.cfg.evaluation.mmlu else "?"
        doc.add(Table(["arm", "MMLU"] + [f"gen {g}" for g in gens], rows,
                      caption=f"MMLU accuracy (0-1, chance 0.25; format {fmt_}) per subject group and generation; per-subject values are in metrics.json and the database"))
    if not staged:
        return
    rows = []
    for g in sorted(staged, key=lambda x: (run.arms.index(x.arm), x.seed, x.generation)):
        d = g.doc["metrics"]["collapse_stage"]["details"]
        rows.append([f"`{g.arm}`", str(g.seed), str(g.generation), f"**{d['stage']}**", d["reason"],
                     fmt(d["retained"]) if d.get("retained") is not None else "not defined"])
    doc.add(Table(["arm", "seed", "gen", "stage", "why", "share of gen-0 above-chance accuracy kept"], rows,
                  caption="Collapse stage per generation: A knowledge preserved, B fluent but wrong, C collapsed (`evaluation.stages`)"))

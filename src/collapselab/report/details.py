"""Report sections about the data and the runs: dataset statistics, filter effectiveness,
sample predictions, training details and reproducibility. Each has the signature
`(run, doc, figdir)` (the report's `SECTIONS`) and adds nothing where it does not apply."""

from __future__ import annotations

import json
from pathlib import Path

from collapselab.refinery.pipeline import rejection_of
from collapselab.report import figures
from collapselab.report.document import Code, Document, Figure, Heading, Para, Table
from collapselab.report.outcomes import colors, fmt
from collapselab.results import RunData
from collapselab.rundir.generation import REJECTED, SYNTHETIC, TRAIN

RIGHT_F1 = 50.0  # a prediction is "right" when its token F1 with the best reference is >= 50 %
SAMPLES = 3
PREVIEW = 240


def _short(text: str, n: int = PREVIEW) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _mean(xs: list[float]) -> str:
    return fmt(sum(xs) / len(xs)) if xs else "no records"


def dataset_statistics(run: RunData, doc: Document, figdir: Path) -> None:
    doc.add(Heading("Dataset statistics"))
    seed = run.seeds[0]
    qa = run.task.answers_questions
    rows = []
    for arm in run.arms:
        for g in sorted((x for x in run.gens if x.arm == arm and x.seed == seed), key=lambda x: x.generation):
            recs = run.records(g, TRAIN)
            share = sum(r.source != "human" for r in recs) / len(recs) if recs else 0.0
            if qa:
                rows.append([f"`{arm}`", str(g.generation), str(len(recs)), fmt(share),
                             _mean([len((r.question or "").split()) for r in recs]),
                             _mean([len(r.answers[0].split()) if r.answers else 0 for r in recs]),
                             str(len({(r.question or "").strip().lower() for r in recs})), fmt(sum(not r.answers for r in recs) / max(1, len(recs)))])
            else:
                rows.append([f"`{arm}`", str(g.generation), str(len(recs)), fmt(share),
                             _mean([len((r.text or "").split()) for r in recs]), str(len({r.text for r in recs}))])
    header = ["arm", "gen", "records", "non-human share"]
    header += ["mean question words", "mean answer words", "unique questions", "no-answer share"] if qa else ["mean words", "unique texts"]
    doc.add(Table(header, rows, caption=f"Training set of each generation (seed {seed})"))
    test = run.predictions(run.gens[0])
    doc.add(Para(f"Held-out human test set: {len(test)} {run.task.test_unit}s, shared by every arm and generation."))


def filter_effectiveness(run: RunData, doc: Document, figdir: Path) -> None:
    """The refinery builds' counts, strategies and filters; absent when no arm builds its data with it."""
    built = [g for g in run.gens if g.refinery]
    if not built:
        return
    doc.add(Heading("Refinery and filter effectiveness"))
    rows, strat_rows, filter_rows, labels, passed, rejected = [], [], [], [], [], []
    for g in built:
        at = f" gen {g.generation}" if g.generation else ""  # arms[].verify: a build per generation
        s, name = g.refinery, f"`{g.arm}` seed {g.seed}{at}"
        rej = s.get("rejected", {})
        rows.append([name, s.get("kind", "?"), str(s["attempts"]), str(s["passed"]), str(s.get("used", s["passed"])),
                     fmt(s["passed"] / s["attempts"]) if s["attempts"] else "no candidates",
                     ", ".join(f"{k} {v}" for k, v in rej.items()) or "none"])
        labels.append(f"{g.arm} s{g.seed}{at}")
        passed.append(s["passed"])
        rejected.append(rej)
        for strat, v in s.get("strategies", {}).items():
            rate = v.get("success_rate")
            strat_rows.append([name, strat, str(v.get("planned", v.get("attempts"))), str(v.get("not_applicable", 0)),
                               str(v.get("passed")), fmt(rate) if rate is not None else "not used"])
        for f in s.get("filter_order", sorted(s.get("filters", {}))):
            v = s["filters"][f]
            filter_rows.append([name, f, str(v["checked"]), str(v["rejected"]), fmt(v["rejected"] / v["checked"]) if v["checked"] else "nothing left to check", fmt(v["seconds"], 3)])
    doc.add(Table(["build", "kind", "attempts", "passed", "used", "pass rate", "rejected by reason"], rows,
                  caption="attempts: candidates that reached the filters; used: records in the arm's training set"))
    doc.add(Figure(figures.rejection_bars(labels, passed, rejected, "Refinery candidates: passed and rejected by reason", figdir / "filters.png"),
                   "Each bar is one refinery build; rejections are counted under the first filter that failed the record."))
    doc.add(Table(["build", "strategy", "planned", "could not apply", "passed filters", "success rate"], strat_rows,
                  caption="Success rate = passed / planned per strategy; could not apply: records the strategy had nothing to rewrite in"))
    if filter_rows:
        doc.add(Table(["build", "filter (in order)", "checked", "rejected", "rejection rate", "seconds"], filter_rows))
    for g in built:
        v = g.refinery.get("answer_validation")
        if v:
            doc.add(Para(f"Answer validation, `{g.arm}` seed {g.seed}: " + ", ".join(f"{k.replace('_', ' ')} {fmt(x) if isinstance(x, float) else x}" for k, x in v.items() if x is not None) + "."))
    examples = []
    for g in built:
        seen: set[str] = set()
        for r in run.records(g, REJECTED):
            why = rejection_of(r) or {}
            if why.get("reason") not in seen:
                seen.add(why["reason"])
                examples.append([f"`{g.arm}`", why["reason"], fmt(why.get("value")) if why.get("value") is not None else "",
                                 _short(r.question or "", 120), _short(r.answers[0] if r.answers else "(no answer)", 80)])
    if examples:
        doc.add(Table(["arm", "reason", "measured", "question", "answer"], examples, caption="One rejected candidate per reason"))


def sample_predictions(run: RunData, doc: Document, figdir: Path) -> None:
    seed, g = run.seeds[0], run.last_generation
    if not run.task.answers_questions:
        rows = []
        for arm in run.arms:
            for gen in sorted({0, g}):
                found = [x for x in run.find(arm, gen) if x.seed == seed]
                for r in (run.records(found[0], SYNTHETIC)[:2] if found else []):
                    rows.append([f"`{arm}`", str(gen), _short(r.text or "")])
        if rows:
            doc.add(Heading("Sample texts"))
            doc.add(Table(["arm", "gen", "synthetic text"], rows, caption=f"Texts the models wrote (continuations of human blocks), seed {seed}"))
        return
    doc.add(Heading("Sample predictions"))
    roles = run.three_arm
    b, c = (roles["contaminated"], roles["synthetic"]) if roles else (run.arms[0], run.arms[-1])
    preds = {a: {r["example_id"]: r for r in run.predictions([x for x in run.final(a) if x.seed == seed][0])} for a in run.arms}
    ids = list(preds[run.arms[0]])

    def right(a: str, i: str) -> bool:
        return float(preds[a][i]["scores"].get("f1", 0.0)) >= RIGHT_F1

    cats = [("every arm right", lambda i: all(right(a, i) for a in run.arms)),
            (f"`{b}` wrong, `{c}` right", lambda i: not right(b, i) and right(c, i)),
            ("every arm wrong", lambda i: not any(right(a, i) for a in run.arms))]
    doc.add(Para(f"Generation {g}, seed {seed}; a prediction is right when its token F1 with the best reference is at least {RIGHT_F1:.0f} %."
                 + ("" if roles else f" The categories set the first arm, `{b}`, against the last, `{c}`.")))
    for title, test in cats:
        chosen = [i for i in ids if test(i)]
        doc.add(Heading(f"{title}: {len(chosen)} of {len(ids)} questions", 3))
        if not chosen:
            doc.add(Para("No test question falls in this category."))
            continue
        rows = []
        for i in chosen[:SAMPLES]:
            row = preds[run.arms[0]][i]
            q, _, ctx = row["input"].partition("\n\n")
            refs = json.loads(row["reference"]) or ["(no answer)"]
            rows.append([_short(q, 120), _short(ctx, 160), " / ".join(refs)] + [preds[a][i]["prediction"] or "(no answer)" for a in run.arms])
        doc.add(Table(["question", "context", "reference"] + [f"`{a}`" for a in run.arms], rows))


def training_details(run: RunData, doc: Document, figdir: Path) -> None:
    doc.add(Heading("Training details"))
    rows, curves = [], {}
    for g in run.gens:
        t, tm = g.doc.get("train", {}), g.doc.get("timings", {})
        losses = t.get("losses") or []
        copied = " (copied: same generation-0 data)" if g.doc.get("copied_from") else ""
        rows.append([f"`{g.arm}`{copied}", str(g.seed), str(g.generation), str(g.doc["sizes"]["train_records"]), str(t.get("steps")),
                     f"{t.get('tokens'):,}" if t.get("tokens") is not None else "not recorded",
                     fmt(losses[0], 3) if losses else "no steps", fmt(losses[-1], 3) if losses else "no steps",
                     *(fmt(tm[k], 1) if tm.get(k) is not None else "earlier process" for k in ("train_s", "generate_s", "evaluate_s"))])
        if g.seed == run.seeds[0] and losses and g.generation in (0, run.last_generation) and not g.doc.get("copied_from"):
            curves[(g.arm, g.generation)] = losses
    doc.add(Table(["arm", "seed", "gen", "records", "steps", "tokens", "first loss", "last loss", "train s", "generate s", "evaluate s"], rows,
                  caption="train s includes training the scratch base for a human generation 0 the first time (it is cached)"))
    gen_rows = []
    for g in run.gens:
        gen = (g.refinery or {}).get("generator")
        if gen:
            gen_rows.append([f"`{g.arm}` seed {g.seed}", str(gen.get("base")), str(gen.get("steps")), fmt(gen.get("seconds"), 1), fmt(gen.get("final_loss"), 3)])
    if gen_rows:
        doc.add(Table(["refinery build", "generator base", "steps", "seconds", "final loss"], gen_rows,
                      caption="The refinery generator: the base fine-tuned on the human seed (QA + question generation), trained once per seed"))
    if curves:
        doc.add(Figure(figures.loss_curves(curves, f"Training loss (seed {run.seeds[0]})", figdir / "loss.png", colors(run)),
                       "Loss per optimizer step of each arm's first and last generation."))


def reproducibility(run: RunData, doc: Document, figdir: Path) -> None:
    m = run.manifest
    doc.add(Heading("Reproducibility"))
    hw = m.get("hardware", {})
    rows = [["run id", f"`{m['run_id']}`"], ["created", m.get("created", "not recorded")], ["git SHA", f"`{m.get('git_sha')}`"],
            ["config hash", f"`{m.get('config_hash')}`"], ["seeds", str(m.get("seeds"))], ["python", str(m.get("python"))],
            ["hardware", ", ".join(f"{k} {v}" for k, v in hw.items()) or "not recorded"], ["command", " ".join(m.get("command") or []) or "not recorded"]]
    rows += [[f"package {k}", str(v) if v else "not installed"] for k, v in (m.get("packages") or {}).items()]
    doc.add(Table(["what", "value"], rows))
    doc.add(Code((run.run_dir / "config.yaml").read_text(), summary="The resolved config (config.yaml)"))

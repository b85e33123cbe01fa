"""The report's opening and discussion, read as text: the headline comes first, sections that
do not apply are absent, the "under collapse" note is there where it applies, and every
number in Findings and Limitations is one the run recorded (a metric, a mean, difference or
interval of metrics, a count), recomputed here from the run folder's files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from collapselab.metrics.stats import paired_bootstrap, summarize
from collapselab.report import write_report

# 1,234 / 1,234.56 / -0.40 / +4.37 / 95
NUMBER = re.compile(r"(?<![\w.-])[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")
CODE = re.compile(r"`[^`]*`")
NOT_APPLICABLE = re.compile(r"not applicable|does not apply|no success criteria apply|no refinery in this run"
                            r"|not a three-arm|one generation per arm", re.IGNORECASE)


@pytest.fixture(scope="module")
def reports(tmp_path_factory, tiny_lm_run, tiny_qa_run, tiny_three_arm_run) -> dict[str, tuple[Path, str]]:
    out = tmp_path_factory.mktemp("reports")
    runs = {"lm": tiny_lm_run.run_dir, "qa": tiny_qa_run.run_dir, "three": tiny_three_arm_run.run_dir}
    return {k: (d, write_report(d, out / k).markdown.read_text()) for k, d in runs.items()}


def section(md: str, title: str) -> str:
    """The text of the `## title` section ("" when the report has none)."""
    parts = md.split(f"\n## {title}\n", 1)
    return parts[1].split("\n## ", 1)[0] if len(parts) == 2 else ""


def headings(md: str) -> list[str]:
    return [line[3:] for line in md.splitlines() if line.startswith("## ")]


# ---------------------------------------------------------------- what the run recorded


def _metrics_files(run_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(run_dir.glob("*/seed-*/gen-*/metrics.json"))]


def _per_example(run_dir: Path, arm: str, seed: int, generation: int, metric: str) -> dict[str, float]:
    rows = pq.read_table(run_dir / arm / f"seed-{seed}" / f"gen-{generation}" / "predictions.parquet").to_pylist()
    return {r["example_id"]: float(v) for r in rows if (v := json.loads(r["scores"]).get(metric)) is not None}


def recorded_numbers(run_dir: Path) -> list[float]:
    """Every number the run's files give, and the statistics the report may cite of them:
    each metric value; per arm, generation and metric the mean over seeds and its 95 %
    interval; per arm and metric the change from generation 0 to the last (per seed, over
    seeds, and in percent); differences of arms' means; paired bootstraps between arms over
    test examples; generation 0's per-example spread; the model's parameter count; the
    refinery's counts; the config's seeds, generations and tolerance."""
    from safetensors import safe_open

    docs = _metrics_files(run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    out: list[float] = [95.0]  # the intervals' level
    seeds = config["experiment"]["seeds"]
    generations = sorted({d["generation"] for d in docs})
    arms = [a["name"] for a in config["arms"]]
    out += [len(seeds), len(seeds) - 1, *seeds, *generations, len(generations), len(arms)]
    values: dict[tuple[str, int, str], list[float]] = {}
    by_seed: dict[tuple[str, int, int, str], float] = {}
    for d in docs:
        for name, entry in d["metrics"].items():
            if entry["value"] is not None:
                out.append(entry["value"])
                values.setdefault((d["arm"], d["generation"], name), []).append(entry["value"])
                by_seed[(d["arm"], d["seed"], d["generation"], name)] = entry["value"]
        for stats in [d.get("refinery") or {}]:
            out += [v for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)]
            out += [*(stats.get("rejected") or {}).values(), sum((stats.get("rejected") or {}).values())]
            out += [v for f in (stats.get("filters") or {}).values() for v in (f["checked"], f["rejected"])]
    if (run_dir / "run_metrics.json").is_file():
        out += [m["value"] for m in json.loads((run_dir / "run_metrics.json").read_text())["metrics"].values()]
    means = {}
    for key, v in values.items():
        s = summarize(v)
        means[key] = s.mean
        out += [s.mean, s.ci_low, s.ci_high, s.ci_high - s.mean]
    last = generations[-1]
    names = {k[2] for k in values}
    for arm in arms:
        for m in names:
            if (arm, 0, m) in means and (arm, last, m) in means:
                first, end = means[(arm, 0, m)], means[(arm, last, m)]
                out += [end - first] + ([100 * (end - first) / abs(first)] if first else [])
                deltas = [by_seed[(arm, s, last, m)] - by_seed[(arm, s, 0, m)] for s in seeds
                          if (arm, s, last, m) in by_seed and (arm, s, 0, m) in by_seed]
                if deltas:
                    d = summarize(deltas)
                    out += [d.mean, d.ci_low, d.ci_high]
    for m in names:
        for x in arms:
            for y in arms:
                if (x, last, m) in means and (y, last, m) in means:
                    out.append(means[(x, last, m)] - means[(y, last, m)])
                    px = {(s, i): v for s in seeds for i, v in _per_example(run_dir, x, s, last, m).items()}
                    py = {(s, i): v for s in seeds for i, v in _per_example(run_dir, y, s, last, m).items()}
                    keys = sorted(px.keys() & py.keys())
                    if keys and x != y:
                        r = paired_bootstrap([px[k] for k in keys], [py[k] for k in keys], n=2000)
                        out += [r.difference, r.ci_low, r.ci_high]
        scores = list(_per_example(run_dir, arms[0], seeds[0], 0, m).values())
        if len(scores) > 1:
            s = summarize(scores)
            out += [len(scores), s.mean, s.ci_high - s.mean, 100 * (s.ci_high - s.mean) / abs(s.mean) if s.mean else 0.0]
    model = run_dir / arms[0] / f"seed-{seeds[0]}" / "gen-0" / "model"
    for path in model.glob("*.safetensors"):
        with safe_open(str(path), "numpy") as f:
            out.append(sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys()))
    success = (config.get("refinery") or {}).get("success") or {}
    out += [v for v in success.values() if isinstance(v, int | float)]
    return out


def unexplained(text: str, known: list[float]) -> list[str]:
    """The numbers in `text` (arm names and other `code` left out) that match no known number
    at the precision they are written with."""
    bad = []
    for token in NUMBER.findall(CODE.sub("", text)):
        x = float(token.replace(",", ""))
        digits = len(token.split(".")[1]) if "." in token else 0
        tol = 0.5 * 10 ** -digits + 1e-9
        if not any(abs(abs(x) - abs(k)) <= tol for k in known):
            bad.append(token)
    return bad


# ---------------------------------------------------------------- tests


def test_every_number_in_findings_and_limitations_is_the_run_s(reports):
    for kind, (run_dir, md) in reports.items():
        known = recorded_numbers(run_dir)
        for title in ("Findings", "Limitations"):
            text = section(md, title)
            assert text.strip(), (kind, title)
            assert NUMBER.search(CODE.sub("", text)), (kind, title)  # it does cite numbers
            assert not unexplained(text, known), (kind, title, unexplained(text, known))


def test_the_check_catches_a_number_the_run_does_not_have(reports):
    run_dir, md = reports["three"]
    known = recorded_numbers(run_dir)
    assert unexplained("C - B = +12.71 over 7 seeds", known) == ["+12.71", "7"]
    assert unexplained("`ratio-0.1` held at generation 0", known) == []  # names and counts are not figures


def test_the_report_opens_with_the_headline_and_its_prompt(reports, tiny_lm_run):
    from collapselab.results import load_run

    run_dir, md = reports["lm"]
    assert headings(md)[:3] == ["What happened", "Findings", "Limitations"]
    lines = [p for p in section(md, "What happened").split("\n\n") if p.strip()]
    run = load_run(run_dir)
    last = run.last_generation
    means = {a: [sum(run.values(a, g, "perplexity")) / len(run.values(a, g, "perplexity")) for g in (0, last)] for a in run.arms}
    # line 1: one arm in full (perplexity at generation 0 -> the last), the other by its relative change
    first = lines[0]
    full = [a for a in run.arms if f"**`{a}`**" in first]
    assert len(full) == 1 and f"{means[full[0]][0]:,.2f} -> {means[full[0]][1]:,.2f}" in first
    assert f"in {last} generation" in first and all(f"`{a}`" in first for a in run.arms)
    assert re.search(r"\([+-]\d+(\.\d)? %\)", first)
    assert "is better" in lines[1] and ("Held" in lines[1] or "Collapsed" in lines[1] or "Improved" in lines[1])
    assert lines[2].startswith("2 arms x 2 seeds x 2 generations of a ") and "parameter `scratch` model" in lines[2]
    # then one prompt, its continuation per arm at generation 0 and at the last generation
    prompt = section(md, "What happened").split("### One prompt, generation 0 and 1", 1)[1]
    assert "| arm | generation 0 | generation 1 |" in prompt
    seed0 = [g for g in run.find("replace", last) if g.seed == run.seeds[0]][0]
    written = {r.parent_id: r.text for r in run.records(seed0, "synthetic.parquet")}
    picked = re.search(r"Human block `([^`]+)`", prompt).group(1)
    row = [line for line in prompt.splitlines() if line.startswith("| `replace` |")][0]
    assert " ".join(written[picked].split())[:40].replace("|", "\\|") in row


def test_no_section_that_does_not_apply(reports):
    lm, qa, three = (reports[k][1] for k in ("lm", "qa", "three"))
    for md in (lm, qa, three):
        assert not NOT_APPLICABLE.search(md), NOT_APPLICABLE.search(md)
    assert "Success criteria (A human" not in " ".join(headings(lm) + headings(qa))
    assert "Success criteria (A human, B contaminated, C synthetic)" in headings(three)
    assert "Refinery and filter effectiveness" not in headings(lm) + headings(qa)
    assert "Every metric per generation" not in headings(three) and "Gap to the human baseline" in headings(three)
    assert "All main metrics" not in headings(lm)  # language-model metrics share no scale
    assert "Knowledge retention and collapse stages" not in headings(lm)  # no stage without an accuracy
    assert "Knowledge retention and collapse stages" in headings(qa)


def test_one_seed_gets_one_note_and_no_intervals(reports):
    _, qa = reports["qa"]
    assert "(1 seed)" not in qa and "±" not in section(qa, "Main results") and "error bars" not in qa
    assert qa.count("One seed (0): every value is one training run") == 2  # Overview and Limitations
    _, lm = reports["lm"]  # two seeds: intervals, said once per table
    assert "mean over 2 seeds ± 95 % CI half-width" in section(lm, "Main results") and "±" in section(lm, "Main results")


def test_the_under_collapse_note_where_it_applies(reports):
    _, lm = reports["lm"]  # synthetic perplexity and duplicate rate over two generations
    note = section(lm, "How to read these metrics under collapse")
    assert "Shumailov et al." in note and "probable, repetitive text" in note
    assert "| synthetic perplexity (g0) (synthetic, median per sequence, generation-0 model) | lower is better | falls" in note
    assert "| duplicate rate (synthetic, share) | lower is better | rises" in note
    assert "How to read these metrics under collapse" in section(lm, "Findings")
    for kind in ("qa", "three"):  # no synthetic-data metric over generations: no note
        assert "How to read these metrics under collapse" not in reports[kind][1]


def test_findings_say_which_arm_moved_with_its_interval(reports):
    from collapselab.report.changes import changes
    from collapselab.results import load_run

    run_dir, md = reports["lm"]
    run = load_run(run_dir)
    found = section(md, "Findings")
    for c in changes(run, "perplexity"):
        line = [x for x in found.splitlines() if x.startswith(f"- `{c.arm}` ")][0]
        assert f"{c.first.mean:,.2f} at generation 0, {c.last.mean:,.2f} at generation 1" in line
        assert f"[95 % CI {c.delta.ci_low:,.2f}, {c.delta.ci_high:,.2f}] over 2 seeds" in line
        assert ("excludes zero" in line) == c.excludes_zero
        assert line.startswith(f"- `{c.arm}` {'collapsed' if c.excludes_zero and c.worse else 'improved' if c.excludes_zero else 'held'}:")
    _, three = reports["three"]
    found = section(three, "Findings")
    assert "C - B = " in found and "paired bootstrap over test questions [95 % CI" in found
    assert re.search(r"Success criteria \(`refinery.success`, F1, tolerance [\d.]+\) (met|not met)", found)


def test_limitations_name_seeds_model_test_set_and_saturation(reports):
    _, qa = reports["qa"]
    limits = section(qa, "Limitations")
    assert "One seed (0)" in limits and "parameters (`scratch`)" in limits
    assert "Test set: 12 held-out human questions" in limits and "points" in limits
    # every tiny qa model answers nothing: EM and F1 never move, which the report must say
    assert "Saturated: EM 25.00 %, F1 25.00 %" in limits
    _, lm = reports["lm"]
    limits = section(lm, "Limitations")
    assert "2 seeds: 95 % intervals over seeds have 1 degree of freedom" in limits
    assert "is no better than the unigram model's" in limits  # the tiny lm model is above its unigram perplexity


def test_limitations_name_a_refinery_that_rejected_most_candidates(reports):
    run_dir, md = reports["three"]
    limits = section(md, "Limitations")
    for path in sorted(run_dir.glob("*/seed-*/gen-*/refinery.json")):
        stats = json.loads(path.read_text())
        arm = path.parts[-4]
        rejected = sum(stats["rejected"].values())
        said = f"its filters rejected {rejected} of the {stats['attempts']} candidates for `{arm}`" in limits
        assert said == (rejected / stats["attempts"] > 0.5), (arm, rejected, stats["attempts"])
        used, target = stats.get("used", stats["passed"]), stats.get("target")
        short = f"`{arm}` (seed 0) trained on {used} records" in limits
        assert short == (target is not None and used < target)


def test_bounded_scales_come_from_the_registered_units():
    from collapselab.report.discussion import _scale

    assert _scale("f1") == (0.0, 100.0) and _scale("rougeL") == (0.0, 1.0) and _scale("duplicate_rate") == (0.0, 1.0)
    assert _scale("self_bleu") == (0.0, 100.0) and _scale("gibberish_score") == (0.0, 3.0)
    assert _scale("perplexity") is None and _scale("vocabulary_size") is None

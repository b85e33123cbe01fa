"""Reproductions in the reports: the "Reproduction" section of a run's report (when the run
was run as a claim and holds reproduction.json) and the page of every claim that
`collapselab reproduce --all --report DIR` writes (reproductions.md, reproductions.html,
figures/). Both read only what reproduction.json holds (`collapselab.reproduce.suite`).

Per claim: the verdict table (claim, the paper's figure, ours with its 95 % interval and
seed count, verdict, magnitude), our curves (the claim's metric per generation per arm,
mean and 95 % band over seeds) in one panel beside the paper's numbers in another, the
paper's figures with their sources, the setting, the notes and the cost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collapselab.metrics.registry import metric_label
from collapselab.records import atomic_write_text
from collapselab.report.document import Document, Figure, Heading, Para, Table
from collapselab.reproduce.suite import read_reproduction
from collapselab.reproduce.verdicts import MIN_SEEDS, magnitude_text, ours_text, paper_text
from collapselab.results import RunData

RULES = (f"A check is **reproduced** when the 95 % interval of its value over seeds (paired by seed: the same seed's arms "
         f"share generation 0) lies entirely on the side of 0 the paper claims, **not reproduced** when it lies entirely on "
         f"the other side, and **inconclusive** when it touches or straddles 0, or rests on fewer than {MIN_SEEDS} seeds. A "
         "claim is reproduced when every check is. The paper's magnitude is reported beside ours, never judged.")


def section(run: RunData, doc: Document, figdir: Path) -> None:
    """The run report's "Reproduction" section; nothing when the run holds no reproduction.json."""
    results = read_reproduction(run.run_dir)
    if results is None:
        return
    doc.add(Heading("Reproduction"))
    names = ", ".join(f"`collapselab reproduce {r['claim']}`" for r in results)
    doc.add(Para(f"This run tests {'a published claim' if len(results) == 1 else 'published claims'} ({names}). {RULES}"))
    for r in results:
        if len(results) > 1:
            doc.add(Heading(f"{r['claim']}: {r['title']}", level=3))
        claim_blocks(r, doc, figdir)


def write_page(results: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Write reproductions.md and a self-contained reproductions.html (figures in figures/)
    of every claim's reproduction.json (or failure); returns their paths."""
    figdir = out_dir / "figures"
    doc = Document("collapselab reproductions: published model-collapse findings beside our measurements")
    dates = sorted(r["date"] for r in results)
    shas = sorted({r["git_sha"] for r in results if r.get("git_sha")})
    doc.add(Para(f"Written by `collapselab reproduce --all --report` ({dates[0][:10] if dates else 'no claims'}"
                 f"{' to ' + dates[-1][:10] if dates and dates[-1][:10] != dates[0][:10] else ''}; collapselab git "
                 f"{', '.join(f'`{s[:12]}`' for s in shas) or 'SHA not recorded'}). {RULES}"))
    rows = []
    for r in results:
        held = sum(c["verdict"] == "reproduced" for c in r["checks"])
        rows.append([f"`{r['claim']}`", r["reference"], f"**{r['verdict']}**",
                     f"{held} of {len(r['checks'])}" if r["checks"] else "none measured",
                     _seeds(r.get("seeds", [])), r["size"], r["cost"]["cpu"]])
    doc.add(Table(["claim", "paper", "verdict", "checks reproduced", "seeds with data", "size", "CPU cost"], rows,
                  caption="Every claim; each is detailed below"))
    for r in results:
        doc.add(Heading(f"{r['claim']}: {r['title']}"))
        claim_blocks(r, doc, figdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, html = out_dir / "reproductions.md", out_dir / "reproductions.html"
    atomic_write_text(md, doc.markdown(out_dir))
    atomic_write_text(html, doc.html())
    return md, html


def claim_blocks(r: dict[str, Any], doc: Document, figdir: Path) -> None:
    """One claim's verdict, checks, figure, the paper's numbers, notes and cost."""
    if r["verdict"] == "failed":
        doc.add(Para(f"**Verdict: failed.** The run stopped: {r['error']}"))
    else:
        doc.add(Para(f"**Verdict: {r['verdict']}** ({r['size']} size, `{r['config']}`"
                     f"{', ' + ' '.join('--set ' + o for o in r['overrides']) if r['overrides'] else ''}; "
                     f"{len(r['seeds'])} seed{'' if len(r['seeds']) == 1 else 's'}; run `{r['run_id']}`, git "
                     f"`{(r.get('git_sha') or 'not recorded')[:12]}`, {r['date'][:10]})."))
    doc.add(Para(f"Paper: {r['reference']}."))
    doc.add(Para(f"Setting in the paper: {r['setting']}"))
    if r["checks"]:
        doc.add(Table(["check", "claim", "paper", "ours (95 % interval, seeds)", "verdict", "magnitude"],
                      [[f"`{c['expr']}` ({c['expect']})", c["claim"], paper_text(c), ours_text(c), f"**{c['verdict']}**",
                        magnitude_text(c)] for c in r["checks"]],
                      caption=f"Checks of `{r['claim']}`: each expression per seed, then over seeds"))
    path = figure(r, figdir / f"reproduction-{r['claim']}.png")
    if path is not None:
        doc.add(Figure(path, f"Left: our {metric_label(r['metric'])} per generation per arm (mean and 95 % band over seeds; "
                             "the checks use each seed's paired differences, whose interval can exclude 0 where these bands "
                             "overlap). Right: the paper's numbers at the generations they correspond to."))
    if r["figures"]:
        doc.add(Table(["arm", "generation", "metric", "paper's figure", "source"],
                      [[f"`{f['arm']}`" if f["arm"] else "", "" if f["generation"] is None else str(f["generation"]), f["metric"],
                        f"{f['value']:.4g}" if f["value"] is not None else f"\"{f['quote']}\"", f["source"]] for f in r["figures"]],
                      caption="The paper's figures, copied with their sources"))
    if r["notes"]:
        doc.add(Para(f"Notes: {r['notes']}"))
    doc.add(Para(f"Cost: CPU (laptop size) {r['cost']['cpu']}; GPU (paper size) {r['cost']['gpu']}."))


def figure(r: dict[str, Any], path: Path) -> Path | None:
    """Our curves of the claim's metric beside the paper's numbers; None when neither has a point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from collapselab.report.figures import COLORS

    ours = r["curves"].get(r["metric"], {})
    drawable = [f for f in r["figures"] if f["arm"] and f["generation"] is not None and f["value"] is not None]
    # the paper's panel: its numbers in our metric, else in the metric it reports most (e.g. MMLU where we probe by cloze)
    shown = r["metric"] if any(f["metric"] == r["metric"] for f in drawable) else max(
        (f["metric"] for f in drawable), key=[f["metric"] for f in drawable].count, default=r["metric"])
    paper = [f for f in drawable if f["metric"] == shown]
    if not ours and not paper:
        return None
    arms = list(dict.fromkeys([*ours, *(f["arm"] for f in paper)]))
    color = {a: COLORS[i % len(COLORS)] for i, a in enumerate(arms)}
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8), squeeze=False)
    left, right = axes[0]
    for arm, points in ours.items():
        g = [p["generation"] for p in points]
        left.plot(g, [p["mean"] for p in points], marker="o", color=color[arm], label=arm)
        left.fill_between(g, [p["ci_low"] for p in points], [p["ci_high"] for p in points], color=color[arm], alpha=0.15)
    left.set_title("ours" if ours else "ours: not measured", fontsize=10)
    for arm in dict.fromkeys(f["arm"] for f in paper):
        pts = sorted((f["generation"], f["value"]) for f in paper if f["arm"] == arm)
        right.plot([p[0] for p in pts], [p[1] for p in pts], marker="s", linestyle="--", color=color[arm], label=arm)
    right.set_title("the paper" if paper else "the paper: no per-generation numbers", fontsize=10)
    from matplotlib.ticker import MaxNLocator

    for ax, metric in ((left, r["metric"]), (right, shown)):
        ax.set_xlabel("generation")
        ax.set_ylabel(metric_label(metric), fontsize=8.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(title="arm", fontsize=8, title_fontsize=8)
    fig.suptitle(f"{r['claim']}: {r['title']}", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _seeds(seeds: list[int]) -> str:
    """`3 (0, 1, 2)`: a count first, so one seed numbered 0 does not read as no seed."""
    return f"{len(seeds)} ({', '.join(str(s) for s in seeds)})" if seeds else "0"

"""What the quickstart shows a new user once its run is done: did generation 0 learn the
language (against a unigram baseline and by its samples), and did the replace arm decay."""

from __future__ import annotations

from pathlib import Path

from collapselab.rundir.folders import load_run_config
from collapselab.rundir.generation import SYNTHETIC, TRAIN, GenerationFolder


def explain(run_dir: Path, n_samples: int = 3) -> dict[str, float]:
    cfg = load_run_config(run_dir)
    seed, last = cfg.experiment.seeds[0], cfg.experiment.generations - 1

    def metric(arm: str, g: int, name: str) -> float:
        return GenerationFolder(run_dir, arm, seed, g).read_metrics().metrics[name].value

    first = cfg.arms[0].name
    ppl0, uni = metric(first, 0, "perplexity"), metric(first, 0, "unigram_perplexity")
    print(f"\ngeneration 0 (trained on human text): test perplexity {ppl0:.2f} vs {uni:.1f} for a unigram model of the same text")
    print("a few of its continuations of human prompts (prompt | continuation):")
    g0 = GenerationFolder(run_dir, first, seed, 0)
    synthetic = g0.read_records(SYNTHETIC)
    prompts = {r.id: r for r in g0.read_records(TRAIN)}
    for r in synthetic[:n_samples]:
        prompt = (prompts[r.parent_id].text or "").replace("\n", " ")
        print(f"  ...{prompt[-120:]} | {(r.text or '').replace(chr(10), ' ')[:240]}")
    out = {"generation0_perplexity": ppl0, "unigram_perplexity": uni}
    print(f"\ntest perplexity at generation {last} (generation 0: {ppl0:.2f}):")
    for arm in cfg.arms:
        out[arm.name] = metric(arm.name, last, "perplexity")
        print(f"  {arm.name:<14} {out[arm.name]:.2f}  ({arm.mix}{'' if arm.ratio is None else f' {arm.ratio}'}, init {arm.init})")
    return out

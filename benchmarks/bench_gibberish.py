"""Calibration and validation of the gibberish score, with SmolLM2's surprisal beside it.

Usage: python benchmarks/bench_gibberish.py [--model NAME_OR_FOLDER] [--n 400] [--prompts 100] [--surprisal-n 100]

Two corpora, each split three ways (fit / calibrate / validate, no text in two of them):
- WikiText-2: fitted on the training split, calibrated on 400 validation passages of 60
  words, validated on 400 test passages;
- TinyStories (the quickstart's text): fitted on 1,200 stories plus the WikiText-2 training
  paragraphs as general background (`evaluation.gibberish_background`'s default, as a run
  fits it), calibrated on the next 300, validated on the next 400.
For each, the six graded sets of the validation texts (human, 5/15/30 % of words
misspelt, word salad, random letters), and real model output of known quality: 64-token
continuations of 32-token human prompts by a scratch model of the quickstart's size early
(50 steps) and late (500 steps, the quickstart's pretraining) in training on the fitting
texts (TinyStories only), and by the pretrained SmolLM2-135M-Instruct. Every row gives the
mean score ± its standard error, the share under 2 ("mild gibberish" or worse), and the
mean per-token surprisal (bits) under SmolLM2 of the set's first `--surprisal-n` texts:
the second opinion.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from common import DATA, machine


def _paragraphs(path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [x for x in lines if len(x.split()) >= 20 and not x.startswith("=")]


def _passages(paragraphs: list[str], words: int = 60) -> list[str]:
    return [" ".join(p.split()[:words]) for p in paragraphs]


def _surprisal(model, tokenizer, texts: list[str]) -> float:
    from collapselab.metrics.external import text_nll

    scored = [(s, n) for s, n in text_nll(model, tokenizer, texts, 128, 16384) if n]
    return sum(s for s, _ in scored) / sum(n for _, n in scored) / math.log(2)


def _continue(model, tokenizer, prompts: list[str], seed: int) -> list[str]:
    from collapselab.config import DecodingBlock
    from collapselab.generation import generate

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"][:32] for p in prompts]
    out = generate(model, tokenizer, ids, DecodingBlock(method="sample", top_p=0.9), max_new_tokens=64, seed=seed, progress=False)
    return [tokenizer.decode(o, skip_special_tokens=True).removesuffix("\ufffd") for o in out]


def _scratch(train: list[str], steps: int):
    from collapselab.config import ScratchArchitecture, TrainingBlock
    from collapselab.models.loading import build_scratch_model, train_tokenizer
    from collapselab.training.loop import train_lm

    tok = train_tokenizer(train, 2048)
    model = build_scratch_model(ScratchArchitecture(architecture="llama", vocab_size=2048, d_model=128, n_layers=4, n_heads=4,
                                                    max_positions=256), tok, 0)
    stream = [t for ids in tok(train, add_special_tokens=False)["input_ids"] for t in ids]
    train_lm(model, [stream], TrainingBlock(max_steps=steps, lr=2e-3, batch_tokens=512, seq_len=128), eos_id=tok.eos_token_id,
             seed=0, progress=False)
    return model.eval(), tok


def _table(scorer, sets: dict[str, list[str]], lm, surprisal_n: int) -> None:
    print(f"| texts | n | gibberish score (mean ± se) | share < 2 | character / validity / order (means) "
          f"| SmolLM2 surprisal (bits/token, first {surprisal_n}) |")
    print("|---|---|---|---|---|---|")
    for name, texts in sets.items():
        s = scorer.scores(texts)
        x = scorer.statistics(texts)
        stats = [f"{np.nanmean(c):{f}}" if not np.isnan(c).all() else "n/a" for c, f in zip(x.T, (".2f", ".3f", ".2f"), strict=True)]
        print(f"| {name} | {len(s)} | {s.mean():.2f} ± {s.std(ddof=1) / math.sqrt(len(s)):.3f} | {np.mean(s < 2):.2f} "
              f"| {' / '.join(stats)} | {_surprisal(*lm, texts[:surprisal_n]):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--surprisal-n", type=int, default=100, help="Texts per set scored by SmolLM2 (its cost dominates).")
    parser.add_argument("--save", help="Write every scored set's texts to this JSON file ({corpus: {set: [texts]}}).")
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapselab.metrics.corruption import graded_sets
    from collapselab.metrics.gibberish import fit_gibberish_scorer
    from collapselab.metrics.sanity import read_background
    from collapselab.models.loading import resolve_model_path

    print(machine())
    path = resolve_model_path(args.model)
    lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(path)
    letters = "abcdefghijklmnopqrstuvwxyz "

    wiki = DATA / "wikitext2"
    t = time.perf_counter()
    train, valid = _paragraphs(wiki / "wiki.train.raw"), _passages(_paragraphs(wiki / "wiki.valid.raw"))[: args.n]
    test = _passages(_paragraphs(wiki / "wiki.test.raw"))
    scorer = fit_gibberish_scorer(train, valid)
    print(f"\n## WikiText-2 (fit {len(train)} training paragraphs, calibrate {len(valid)} validation passages: "
          f"{time.perf_counter() - t:.1f} s)")
    print(f"weights {np.round(scorer.weights, 3).tolist()}, word-order cap {float(scorer.order_cap):.3f} bits\n")
    sets = graded_sets(test[: args.n], letters, None, seed=7)
    t = time.perf_counter()
    sets["SmolLM2 continuations of test prompts"] = _continue(*lm, test[args.n : args.n + args.prompts], seed=1)
    print(f"SmolLM2: {args.prompts} continuations in {time.perf_counter() - t:.0f} s\n", flush=True)
    _table(scorer, sets, lm, args.surprisal_n)
    saved = {"wikitext2": sets}

    stories = [p.strip() for p in (DATA / "tinystories" / "tinystories_valid_prefix.txt").read_text(encoding="utf-8").split("\n\n")
               if len(p.split()) >= 20]
    fit, calib, held = stories[:1200], stories[1200:1500], stories[1500 : 1500 + args.n]
    background = read_background("wikitext2")  # evaluation.gibberish_background's default, as a run fits it
    scorer = fit_gibberish_scorer(background + fit, calib)
    print(f"\n## TinyStories (fit {len(fit)} stories + {len(background)} WikiText-2 training paragraphs of background, "
          f"calibrate {len(calib)}, validate {len(held)})")
    print(f"weights {np.round(scorer.weights, 3).tolist()}, word-order cap {float(scorer.order_cap):.3f} bits\n")
    sets = graded_sets(held, letters, None, seed=7)
    prompts = stories[1500 + args.n : 1500 + args.n + args.prompts]
    for steps in (50, 500):
        t = time.perf_counter()
        model, tok = _scratch(fit, steps)
        sets[f"scratch model after {steps} steps"] = _continue(model, tok, prompts, seed=1)
        print(f"scratch model, {steps} steps: trained and generated in {time.perf_counter() - t:.0f} s", flush=True)
    sets["SmolLM2 continuations"] = _continue(*lm, prompts, seed=1)
    print()
    _table(scorer, sets, lm, args.surprisal_n)
    for name in ("scratch model after 50 steps", "scratch model after 500 steps", "SmolLM2 continuations"):
        text = sets[name][0]
        print(f"\n{name}, first continuation ({scorer.score(text):.2f}): {' '.join(text.split())[:200]}")
    if args.save:
        saved["tinystories"] = sets
        Path(args.save).write_text(json.dumps(saved, indent=1), encoding="utf-8")
        print(f"\ntexts written to {args.save}")
    print()
    print(machine())


if __name__ == "__main__":
    main()

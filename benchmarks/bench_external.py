"""Cost of the external reference model per evaluation, and how precise its sample is.

Usage: python benchmarks/bench_external.py [--model NAME_OR_FOLDER] [--pool 256] [--sizes 16,32,64,128] [--run RUN_DIR]

Scores `--pool` TinyStories passages of 50 words (the length of a quickstart continuation:
64 tokens of its scratch tokenizer) one by one as `metrics/external.py` does, under the
external model (default smollm2-135m-instruct), and prints:
- the load time (from its cached HF folder) and the seconds to score n texts, for each n
  in `--sizes` (median of 3 timings, each a fresh sample);
- for each n, the 95 % bootstrap interval of the median per-sequence perplexity and of the
  mean surprisal of a sample of n texts, relative to the whole pool's value: how far a
  generation's figure from a sample of n can be from what scoring every text would give.
With `--run`, it also scores a finished lm run's synthetic data per arm and generation
(seed 0) as the engine does (`evaluation.reference_sequences` texts, the evaluation seed)
and prints the external perplexity and surprisal beside the gibberish score.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
from common import DATA, machine, matmul_peak_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pool", type=int, default=256)
    parser.add_argument("--sizes", default="16,32,64,128")
    parser.add_argument("--run", default=None, help="A finished lm run directory to score per generation.")
    args = parser.parse_args()
    import torch

    from collapselab.metrics.external import sample_indices, text_nll
    from collapselab.models.loading import resolve_model_path

    print(machine())
    print(f"fp32 matmul peak at start: {matmul_peak_flops() / 1e9:.0f} GFLOP/s")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t = time.perf_counter()
    path = resolve_model_path(args.model)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    print(f"load {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters): {time.perf_counter() - t:.1f} s")

    words = (DATA / "tinystories" / "tinystories_valid_prefix.txt").read_text(encoding="utf-8").split()
    texts = [" ".join(words[i : i + 50]) for i in range(0, 50 * args.pool, 50)]
    t = time.perf_counter()
    nll = text_nll(model, tokenizer, texts, 128, 16384)
    pool_s = time.perf_counter() - t
    tokens = sum(n for _, n in nll) + len(nll)
    ppl = np.array([math.exp(s / n) for s, n in nll])
    bits = np.array([s / n / math.log(2) for s, n in nll])
    print(f"pool: {len(texts)} texts, {tokens / len(texts):.1f} tokens each, {pool_s:.1f} s ({tokens / pool_s:.0f} tokens/s); "
          f"median perplexity {np.median(ppl):.2f}, mean surprisal {bits.mean():.3f} bits/token\n")
    rng = np.random.default_rng(0)
    print("| texts n | seconds (median of 3) | median ppl: 95 % interval vs pool | mean surprisal: 95 % interval vs pool |")
    print("|---|---|---|---|")
    for n in (int(x) for x in args.sizes.split(",")):
        seconds = []
        for rep in range(3):
            chosen = sample_indices(len(texts), n, rep)
            t = time.perf_counter()
            text_nll(model, tokenizer, [texts[i] for i in chosen], 128, 16384)
            seconds.append(time.perf_counter() - t)
        draws = rng.integers(0, len(texts), size=(4000, n))
        med = np.percentile(np.median(ppl[draws], axis=1), [2.5, 97.5]) / np.median(ppl) - 1
        mean = np.percentile(bits[draws].mean(axis=1), [2.5, 97.5]) / bits.mean() - 1
        print(f"| {n} | {statistics.median(seconds):.1f} | {med[0]:+.1%} .. {med[1]:+.1%} | {mean[0]:+.1%} .. {mean[1]:+.1%} |")
    if args.run:
        _score_run(Path(args.run), model, tokenizer, args.model)
    print(f"\nfp32 matmul peak at end: {matmul_peak_flops() / 1e9:.0f} GFLOP/s")
    print(machine())


def _score_run(run_dir: Path, model, tokenizer, name: str) -> None:
    from collapselab.metrics import EvalInputs, evaluate
    from collapselab.metrics.registry import EXTERNAL_DEFAULTS, run_metrics
    from collapselab.metrics.sanity import gibberish_background
    from collapselab.records import read_records
    from collapselab.rundir.folders import load_run_config
    from collapselab.rundir.generation import GenerationFolder
    from collapselab.seeds import step_seed
    from collapselab.tasks import get_task

    cfg = load_run_config(run_dir)
    seed = cfg.experiment.seeds[0]
    train = read_records(GenerationFolder(run_dir, cfg.arms[0].name, seed, 0).train)  # generation 0: the human pool
    common = {"external_model": model, "external_tokenizer": tokenizer, "external_name": name,
              "external_sequences": cfg.evaluation.reference_sequences, "seq_len": cfg.training.seq_len}
    test = _human_test(cfg)
    background = gibberish_background(cfg, get_task("lm"))  # the gibberish scorer's background text, as the run read it
    inputs = EvalInputs(task="lm", test=test, **common)
    t = time.perf_counter()
    once = evaluate(run_metrics(get_task("lm"), inputs), inputs, scope="run")
    print(f"\n{run_dir}: human test set ({len(test)} blocks) under {name}: median perplexity "
          f"{once['external_test_perplexity'].value:.2f}, surprisal {once['external_test_surprisal'].value:.3f} bits/token "
          f"({time.perf_counter() - t:.1f} s)\n")
    print("| arm | gen | gibberish score | external perplexity (median) | external surprisal (bits/token) | Spearman(gibberish, surprisal) | seconds |")
    print("|---|---|---|---|---|---|---|")
    for arm in cfg.arms:
        for g in range(cfg.experiment.generations):
            folder = GenerationFolder(run_dir, arm.name, seed, g)
            inputs = EvalInputs(task="lm", test=test, synthetic=read_records(folder.synthetic), human_train=train,
                                background_texts=background, seed=step_seed(seed, g, "evaluate"), **common)
            t = time.perf_counter()
            out = evaluate([*EXTERNAL_DEFAULTS, "gibberish_score"], inputs)
            rho = out["external_surprisal"].details["gibberish_spearman"]
            print(f"| {arm.name} | {g} | {out['gibberish_score'].value:.3f} | {out['external_synthetic_perplexity'].value:.2f} | "
                  f"{out['external_surprisal'].value:.3f} | {'n/a' if rho is None else f'{rho:.2f}'} | {time.perf_counter() - t:.1f} |",
                  flush=True)


def _human_test(cfg):
    """The run's human test blocks, rebuilt from its config as the engine builds them."""
    from collapselab.engine import human_pools, prepare_tokenizer
    from collapselab.tasks import get_task

    task = get_task(cfg.experiment.task)
    pools = human_pools(cfg, task)
    return task.prepare_human(cfg, pools, prepare_tokenizer(cfg, task, pools[0])).test


if __name__ == "__main__":
    main()

"""Refinery filter throughput: every filter over 1,000 .. 100,000 synthetic QA records.

The records are real SQuAD v2 training contexts, questions and answers, perturbed the way
generated candidates are (words dropped, swapped or replaced, answers extended or
replaced by another context span, some exact copies), so every filter has real work and
rejects something. Two figures:

1. the 60 s figure: length_bounds, answer_in_context, gibberish, exact_duplicate,
   near_duplicate (vectorised MinHash, 64 permutations, LSH) and seed_ngram_overlap
   (8-grams) over N records against a 1,000-record seed, N = 1k, 3k, 10k, 30k, 100k, with
   the time per record, so linear growth shows as a flat per-record cost;
2. seed_embedding_similarity (local all-MiniLM-L6-v2 on the CPU) on its own: its
   throughput in records/s and the time that implies for 100k records. It is NOT in the
   60 s figure: the encoder runs ~100-300 records/s on this CPU.

    COLLAPSELAB_DATA=../shared/data python benchmarks/bench_refinery.py [--max 100000] [--embed 2000]

Measured (AMD EPYC, 2 cores shared, load ~2): 60 s figure 0.11 s / 1k, 0.73 s / 10k, 2.15 s
/ 30k, 7.50 s / 100k (72-75 us/record from 3k up: linear); under load ~5 the same run
took 15.7 s for 100k. Embedding filter alone: 245 records/s (100k ~ 7 min), plus 6 s to
load the encoder and embed a 1,000-record seed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import DATA, machine  # noqa: E402

from collapselab.config.refinery import FiltersConfig  # noqa: E402
from collapselab.records import Record  # noqa: E402
from collapselab.refinery.filters import FilterContext  # noqa: E402
from collapselab.refinery.pipeline import run_filters  # noqa: E402

FAST = ["length_bounds", "answer_in_context", "gibberish", "exact_duplicate", "near_duplicate", "seed_ngram_overlap"]


def human_records() -> list[Record]:
    import os

    from collapselab.datasets import load_splits

    os.environ.setdefault("COLLAPSELAB_DATA", str(DATA))
    return load_splits("squad_v2", None, seed=0).train


def perturb(r: Record, rng: random.Random, i: int) -> Record:
    """A candidate like a strategy writes: same context, a changed question, some answers changed."""
    words = (r.question or "").split()
    roll = rng.random()
    if roll < 0.05:
        pass  # an exact copy of its parent
    elif roll < 0.6:
        for _ in range(rng.randint(1, 3)):
            j = rng.randrange(len(words))
            op = rng.random()
            if op < 0.4 and len(words) > 3:
                del words[j]
            elif op < 0.7:
                k = rng.randrange(len(words))
                words[j], words[k] = words[k], words[j]
            else:
                words[j] = rng.choice((r.context or "x").split())
    else:
        ctx = (r.context or "").split()
        start = rng.randrange(max(1, len(ctx) - 12))
        words = ["What", "is", *ctx[start : start + rng.randint(2, 14)], "?"]
    answers = r.answers
    if answers and rng.random() < 0.3:
        ctx = (r.context or "").split()
        s = rng.randrange(max(1, len(ctx) - 4))
        answers = (" ".join(ctx[s : s + rng.randint(1, 4)]) if rng.random() < 0.8 else "invented words here",)
    return r.derive(id=f"cand-{i}", source="synthetic", generation=0, parent_id=r.id, question=" ".join(words), answers=answers)


def candidates(pool: list[Record], n: int, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    return [perturb(pool[rng.randrange(len(pool))], rng, i) for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max", type=int, default=100_000)
    ap.add_argument("--embed", type=int, default=2000, help="records for the embedding throughput figure")
    args = ap.parse_args()
    print(machine())
    pool = human_records()
    seed = pool[:1000]
    cfg = FiltersConfig(order=FAST)
    ctx = FilterContext(seed, cfg)
    t0 = time.perf_counter()
    run_filters(candidates(pool, 200, 99), seed, cfg, ctx)  # fit the gibberish scorer, build seed indexes
    print(f"setup (gibberish scorer fit on the seed contexts, seed 8-gram set): {time.perf_counter() - t0:.1f} s\n")
    print("60 s figure: " + ", ".join(FAST) + " (NOT seed_embedding_similarity)")
    print(f"{'records':>8} {'seconds':>8} {'us/record':>10} {'passed':>7}  rejected by reason / seconds per filter")
    for n in (1_000, 3_000, 10_000, 30_000, 100_000):
        if n > args.max:
            break
        cands = candidates(pool, n)
        t0 = time.perf_counter()
        out = run_filters(cands, seed, cfg, ctx)
        s = time.perf_counter() - t0
        per = " ".join(f"{k}={v['seconds']:.2f}" for k, v in out.stats["filters"].items())
        print(f"{n:>8} {s:>8.2f} {1e6 * s / n:>10.1f} {out.stats['passed']:>7}  {out.stats['rejected']}  [{per}]")
    print("\nseed_embedding_similarity alone (local all-MiniLM-L6-v2, CPU, batch 128):")
    emb = FiltersConfig(order=["seed_embedding_similarity"])
    ectx = FilterContext(seed, emb)
    t0 = time.perf_counter()
    run_filters(candidates(pool, 8, 98), seed, emb, ectx)
    print(f"  load encoder + embed the {len(seed)} seed records: {time.perf_counter() - t0:.1f} s")
    cands = candidates(pool, args.embed, 7)
    t0 = time.perf_counter()
    out = run_filters(cands, seed, emb, ectx)
    s = time.perf_counter() - t0
    print(f"  {args.embed} records: {s:.1f} s = {args.embed / s:.0f} records/s -> 100,000 records ~ {100_000 / (args.embed / s) / 60:.1f} min; "
          f"rejected {out.stats['rejected']}")
    human_rejections(pool)


def human_rejections(pool: list[Record]) -> None:
    """Share of real human questions the gibberish filter rejects at its default threshold:
    seeds of 40, 100 and 200 shuffled SQuAD v2 training records, scored on the rest (the
    same articles, as candidates written from the seed's contexts are)."""
    from collapselab.refinery.filters import _seed_gibberish_scorer, qa_text

    t = FiltersConfig().gibberish_min_score
    records = list(pool)
    random.Random(0).shuffle(records)
    print(f"\ngibberish filter on held-out human questions (score < {t}):")
    for n in (40, 100, 200):
        scores = _seed_gibberish_scorer(records[:n]).scores([qa_text(r) for r in records[n:]])
        print(f"  seed {n}: {float((scores < t).mean()):.2%} of {len(scores)} rejected; mean score {scores.mean():.2f}")


if __name__ == "__main__":
    main()

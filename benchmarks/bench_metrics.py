"""Wall time of the QA metric suite on 2,000 predictions and the lm diversity suite on 2,000 texts.

Usage: python benchmarks/bench_metrics.py [--data DIR] [--mauve]   (DIR defaults to $COLLAPSELAB_DATA or ../shared/data)

The QA suite (EM, F1, ROUGE-1/2/L, Jaccard, answer-in-context, answer length, BERTScore,
semantic similarity) scores real SQuAD v2 dev questions with noisy context-span
predictions; "cold" includes loading the encoder, "warm" is a second pass in the same
process. The lm suite is every synthetic-data default except synthetic_perplexity (it
needs a model) on 2,000 64-word chunks of WikiText-2 validation paragraphs against the
test paragraphs; the gibberish scorer is fitted on WikiText-2 train first (timed apart, then
cached). Peak RSS is the process maximum.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time
from pathlib import Path

QA_SUITE = [
    "exact_match",
    "f1",
    "rouge1",
    "rouge2",
    "rougeL",
    "jaccard",
    "answer_in_context",
    "answer_length",
    "bertscore",
    "semantic_similarity",
]


def _paragraphs(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [x for x in lines if len(x.split()) >= 20 and not x.startswith("=")]


def _timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    print(f"{label:<44} {time.perf_counter() - t:8.2f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("COLLAPSELAB_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--data", default=default)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--mauve", action="store_true", help="Also time MAUVE (minutes on CPU: it encodes every text).")
    args = parser.parse_args()
    data = Path(args.data)
    os.environ.setdefault("COLLAPSELAB_CACHE", tempfile.mkdtemp(prefix="bench-metrics-"))

    from collapselab.datasets.squad import read_squad
    from collapselab.metrics import EvalInputs, evaluate
    from collapselab.metrics.registry import SYNTHETIC_DEFAULTS
    from collapselab.records import Record

    rng = random.Random(0)
    records = rng.sample(
        read_squad(data / "squad_v2" / "dev-v2.0.explorer-eval.json"), args.n
    )
    preds = []
    for r in records:
        words = r.context.split()
        i = rng.randrange(len(words))
        preds.append(
            r.answers[0]
            if r.answers and rng.random() < 0.4
            else " ".join(words[i : i + rng.randint(0, 5)])
        )
    qa = lambda: evaluate(QA_SUITE, EvalInputs(task="qa", test=records, predictions=preds))  # noqa: E731
    _timed(f"QA suite, {args.n} predictions (cold)", qa)
    _timed(f"QA suite, {args.n} predictions (warm)", qa)

    wiki = data / "wikitext2"
    train = [Record(id=f"t{i}", text=t) for i, t in enumerate(_paragraphs(wiki / "wiki.train.raw"))]
    test = [
        Record(id=f"h{i}", text=t)
        for i, t in enumerate(_paragraphs(wiki / "wiki.test.raw")[: args.n])
    ]
    # 64-word chunks of validation paragraphs stand in for generated continuations.
    chunks = [" ".join(w[i : i + 64]) for w in (t.split() for t in _paragraphs(wiki / "wiki.valid.raw"))
              for i in range(0, len(w) - 31, 64)]
    synthetic = [
        Record(id=f"s{i}", source="synthetic", generation=1, text=t) for i, t in enumerate(chunks[: args.n])
    ]
    from collapselab.metrics.gibberish import cached_gibberish_scorer

    _timed(
        "gibberish scorer fit on WikiText-2 train",
        lambda: cached_gibberish_scorer([r.text for r in train]),
    )
    names = [n for n in SYNTHETIC_DEFAULTS if n != "synthetic_perplexity"]
    lm = lambda: evaluate(names, EvalInputs(task="lm", test=test, synthetic=synthetic, human_train=train))  # noqa: E731
    _timed(f"lm diversity suite, {len(synthetic)} texts ({len(names)} metrics)", lm)
    if args.mauve:
        _timed(
            f"mauve, {len(synthetic)} vs {len(test)} texts",
            lambda: evaluate(["mauve"], EvalInputs(task="lm", test=test, synthetic=synthetic)),
        )
    print(f"{'peak RSS':<44} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:8.0f} MiB")


if __name__ == "__main__":
    main()

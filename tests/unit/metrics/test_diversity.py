"""Diversity metrics on hand-worked corpora, and against sacrebleu and scipy."""

from __future__ import annotations

import math
import random

import pytest
import sacrebleu
from scipy.spatial.distance import jensenshannon

from collapselab.metrics import EvalInputs, evaluate
from collapselab.metrics.diversity import (
    distinct_n,
    js_divergence,
    length_stats,
    rare_ngrams,
    rep_diversity,
    rep_n,
    self_bleu,
    tail_coverage,
    text_entropies,
    token_entropy,
    vocabulary_size,
    word_tokens,
)
from collapselab.records import Record

TEXTS = [
    "The cat sat on the mat.",
    "A dog ran under the big tree, quickly.",
    "The cat sat on the mat again today.",
    "Birds flew over the small house in the morning.",
    "Nobody expected the quiet river to flood the valley.",
    "The cat sat on the mat.",
]


def test_entropies_by_hand():
    assert token_entropy(["a b", "a b"]) == pytest.approx(1.0)  # two equiprobable tokens
    assert token_entropy(["a a a a"]) == 0.0
    # Whitespace tokens per text: {x: 2, y: 2} is 1 bit; {p, q, r, s} is 2 bits.
    assert text_entropies(["x x y y", "p q r s", ""]) == pytest.approx([1.0, 2.0, 0.0])


def test_distinct_and_rep_n_by_hand():
    assert word_tokens("Hello, World!") == ["hello", ",", "world", "!"]
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)  # ab, ba, ab
    # Within-text repetition: text 1 has bigrams ab ba ab (2 unique of 3), text 2 has cd.
    assert rep_n(["a b a b", "c d"], 2) == pytest.approx(1 - 3 / 4)
    assert rep_n(["a b a b", "c d"], 3) == 0.0
    assert rep_diversity(["a b a b", "c d"]) == pytest.approx(0.75)
    # Across texts nothing repeats inside a text, so rep is 0 even for identical texts.
    assert rep_n(["a b c", "a b c"], 2) == 0.0 and distinct_n(["a b c", "a b c"], 2) == pytest.approx(0.5)
    assert vocabulary_size(["A a b", "c"]) == 3


def test_self_bleu_equals_direct_sacrebleu():
    # Sample covering every text: the same texts in the order random.Random(seed).sample gives.
    value, per = self_bleu(TEXTS, n_sample=100, seed=3)
    sample = random.Random(3).sample(TEXTS, len(TEXTS))
    direct = [sacrebleu.sentence_bleu(h, sample[:i] + sample[i + 1 :]).score for i, h in enumerate(sample)]
    assert per == pytest.approx(direct, abs=1e-9)
    assert value == pytest.approx(sum(direct) / len(direct))
    # A seeded sub-sample is scored on that sub-sample only.
    value, per = self_bleu(TEXTS, n_sample=4, seed=1)
    sample = random.Random(1).sample(TEXTS, 4)
    assert per == pytest.approx([sacrebleu.sentence_bleu(h, sample[:i] + sample[i + 1 :]).score
                                 for i, h in enumerate(sample)], abs=1e-9)
    assert self_bleu(["same words here"] * 3)[0] == pytest.approx(100.0)


def test_tail_coverage_counts_rare_human_words():
    human = ["common " * 10 + " ".join(f"w{i}" for i in range(10))]
    # 11 distinct words: the bottom decile is ceil(1.1) = 2 words, both hapaxes.
    tail = rare_ngrams(human)
    assert len(tail) == 2 and all(g[0].startswith("w") for g in tail)
    assert tail_coverage([" ".join(f"w{i}" for i in range(10))], human) == 1.0
    assert tail_coverage(["common common"], human) == 0.0
    one = next(iter(tail))[0]
    assert tail_coverage([f"common {one}"], human) == 0.5


def test_js_divergence_matches_scipy():
    a, b = ["x x y z"], ["x y y y w"]
    # Over the vocabulary x, y, z, w:
    p = [2 / 4, 1 / 4, 1 / 4, 0]
    q = [1 / 5, 3 / 5, 0, 1 / 5]
    assert js_divergence(a, b) == pytest.approx(jensenshannon(p, q, base=2) ** 2)
    assert js_divergence(a, a) == pytest.approx(0.0)
    assert js_divergence(["x"], ["y"]) == pytest.approx(1.0)
    assert js_divergence(["", " "], ["y"]) == 1.0  # a generation of empty outputs shares nothing


def test_length_stats_by_hand():
    s = length_stats(["a b", "a b c d", ""])
    assert s["words_mean"] == pytest.approx(2.0) and s["words_max"] == 4 and s["words_min"] == 0
    assert s["words_std"] == pytest.approx(math.sqrt(8 / 3))


def test_registered_diversity_metrics_read_synthetic_texts():
    synthetic = [Record(id=f"s{i}", source="synthetic", generation=1, text=t) for i, t in enumerate(TEXTS)]
    test = [Record(id="h", text="The cat sat on the mat. The dog ran.")]
    names = ["entropy", "distinct_2", "self_bleu", "rep_diversity", "tail_coverage", "js_divergence", "length_mean"]
    out = evaluate(names, EvalInputs(task="lm", test=test, synthetic=synthetic))
    assert out["distinct_2"].value == pytest.approx(distinct_n(TEXTS, 2))
    assert out["self_bleu"].value == pytest.approx(self_bleu(TEXTS, 500, 0)[0])
    assert not out["self_bleu"].higher_is_better and out["entropy"].higher_is_better
    with pytest.raises(ValueError, match="needs 'synthetic'"):
        evaluate(["distinct_1"], EvalInputs(task="lm", test=test))


def test_js_divergence_is_the_same_in_every_process():
    # The vocabulary was a set: its order, and the float sums with it, changed with
    # PYTHONHASHSEED, so the quickstart's js_divergence differed in its last digits run to run.
    import os
    import subprocess
    import sys

    code = ("import random; from collapselab.metrics.diversity import js_divergence as j; r = random.Random(0); "
            "w = [''.join(r.choice('abcdefgh') for _ in range(r.randint(1, 6))) for _ in range(3000)]; "
            "print(repr(j([' '.join(w[i:i + 20]) for i in range(0, 1500, 20)], [' '.join(w[i:i + 20]) for i in range(1500, 3000, 20)])))")
    values = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(s)}, capture_output=True,
                             text=True, check=True).stdout.strip() for s in range(4)}
    assert len(values) == 1, values

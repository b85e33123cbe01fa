"""`GibberishScorer.score` for many texts at once, vectorised over all of them.

The metrics package's scorer runs a few small numpy calls per text (~250 us each here),
which alone would spend most of the refinery's 60 s budget on 100,000 records. This
computes the same three statistics (character trigram log-probability, word validity,
word association) for every text in a handful of whole-array operations, from the
scorer's public fitted arrays; a test checks it equals `scorer.score` text by text.
(Local to the refinery until the metrics package grows a batch scorer.)
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from collapselab.metrics.gibberish import GibberishScorer

_LAMBDA = 0.5  # the scorer's bigram interpolation weight (metrics.gibberish._LAMBDA)


def _lookup(codes: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
    if len(codes) == 0:
        return np.zeros(len(queries))
    pos = np.clip(np.searchsorted(codes, queries), 0, len(codes) - 1)
    return np.where(codes[pos] == queries, counts[pos], 0).astype(np.float64)


def _segment_mean(values: np.ndarray, segment: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment mean of `values` (NaN for an empty segment) and the segment sizes."""
    total = np.bincount(segment, weights=values, minlength=n)
    size = np.bincount(segment, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, total / np.maximum(size, 1), np.nan), size


def statistics(scorer: GibberishScorer, texts: Sequence[str]) -> np.ndarray:
    """(N, 3) statistics as `scorer.statistics` gives them (NaN where undefined)."""
    n = len(texts)
    a = len(scorer.alphabet) + 1
    # characters: one flat array of code points -> alphabet ids (0 = unknown)
    lowered = [t.lower() for t in texts]
    lens = np.fromiter((len(t) for t in lowered), dtype=np.int64, count=n)
    lut = np.zeros(0x110000, dtype=np.int64)
    lut[np.fromiter((ord(c) for c in scorer.alphabet), dtype=np.int64)] = np.arange(1, a)
    ids = lut[np.frombuffer("".join(lowered).encode("utf-32-le"), dtype=np.uint32)]
    seg = np.repeat(np.arange(n), lens)
    pos = np.arange(len(ids)) - np.repeat(np.cumsum(lens) - lens, lens)  # index inside its text
    prev1 = np.where(pos >= 1, np.roll(ids, 1), 0)  # the two boundary symbols are unknown (0)
    prev2 = np.where(pos >= 2, np.roll(ids, 2), 0)
    logp = np.log2((_lookup(scorer.trigram_codes, scorer.trigram_counts, prev2 * a * a + prev1 * a + ids) + 1.0)
                   / (_lookup(scorer.context_codes, scorer.context_counts, prev2 * a + prev1) + a))
    char, _ = _segment_mean(logp, seg, n)
    # words: ids in the fitted vocabulary (-1 unknown), then adjacent known pairs
    index = {w: i for i, w in enumerate(scorer.vocabulary)}
    words = [[w for w in (tok.strip(string.punctuation) for tok in t.split()) if w] for t in lowered]
    wlens = np.fromiter((len(w) for w in words), dtype=np.int64, count=n)
    wid = np.fromiter((index.get(w, -1) for ws in words for w in ws), dtype=np.int64, count=int(wlens.sum()))
    wseg = np.repeat(np.arange(n), wlens)
    validity, nwords = _segment_mean((wid >= 0).astype(np.float64), wseg, n)
    known = (wseg[:-1] == wseg[1:]) & (wid[:-1] >= 0) & (wid[1:] >= 0)
    w1, w2 = wid[:-1][known], wid[1:][known]
    v = len(scorer.vocabulary)
    c12 = _lookup(scorer.pair_codes, scorer.pair_counts, w1 * v + w2)
    c1, c2 = scorer.word_counts[w1].astype(np.float64), scorer.word_counts[w2].astype(np.float64)
    assoc_pairs = np.log2(_LAMBDA * c12 * scorer.word_counts.sum() / (c1 * c2) + (1 - _LAMBDA))
    assoc, _ = _segment_mean(assoc_pairs, wseg[:-1][known], n)
    out = np.stack([char, np.where(nwords > 0, validity, 0.0), assoc], axis=1)
    out[np.array([not t.strip() for t in texts], dtype=bool)] = np.nan
    return out


def scores(scorer: GibberishScorer, texts: Sequence[str]) -> np.ndarray:
    """Gibberish scores in [0, 3] (3 fluent, 0 random characters), equal to `scorer.score` per text."""
    if not texts:
        return np.zeros(0)
    x = statistics(scorer, texts)
    sub = np.clip((x - scorer.bad) / (scorer.good - scorer.bad), 0.0, 1.0)
    sub[:, 2] = np.where(np.isnan(x[:, 2]), sub[:, 1], sub[:, 2])  # no known pair: order = validity
    total = sub.sum(axis=1)
    return np.where(np.isnan(x[:, 0]), 0.0, total)

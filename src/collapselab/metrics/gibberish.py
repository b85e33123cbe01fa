"""An offline gibberish score from 0 (random characters) to 3 (as fluent as human text),
calibrated on the texts it must tell apart.

No hub classifier is reachable, so the score is built from three statistics of a text,
each measured against the human text the scorer is fitted on (in a run: its human pool
plus general text of the language, `evaluation.gibberish_background`, by default the
WikiText-2 training split, so that fluent words and phrases outside the pool's register
are not read as misspellings):

1. character plausibility: mean log2-probability per character under a character
   trigram model (add-one smoothing, lower-cased, digits read as 0);
2. word validity: share of words accounted for: in the human vocabulary, or repeated in
   the same text (a name or term the text is about), or capitalised inside a sentence (a
   name); a misspelt common word is none of these;
3. word order: mean over adjacent pairs of frequent words of log2(P(w2 | w1) / P(w2)),
   with P(w2 | w1) = 0.5 * bigram estimate + 0.5 * P(w2) (pairs seen once count as unseen),
   capped at 3 bits: about 0 for unrelated neighbours (word salad), clearly positive for
   real sentences, whose neighbours are collocations. Only pairs of words both seen at
   least 10 times in the fitting text count (3 or 1 times when the fitting text is too
   small to calibrate with 10): a pair of rare words is unseen whether or not it is in
   order, and counting it as "unseen" scored fluent text with uncommon words like word
   salad and formulaic text like human text. A text with no such pair counts as unseen
   pairs only (-1 bit).

**Calibration.** Held-out human texts (the run's human test set; in the refinery, a held-out
share of the seed) are turned into six graded sets
(`metrics.corruption.graded_sets`): the texts themselves; the texts with 5 %, 15 % and
30 % of their words misspelt at the character level (one or two typist's edits per word);
their words shuffled (word salad); random characters with the human character
frequencies. A fluency value `f = w . statistics + b` is fitted by least squares to the
levels below (weights >= 0, so a better statistic never lowers the score; word order
enters capped at the 10th percentile of the human texts' own, since beyond "in sensible
order" the topic-driven spread of human word order would drown the top levels; short
texts such as a question and its answer may need the 25th or 50th percentile), and the
score maps `f` piecewise linearly through each set's median `f`, so the median text of
each set scores exactly its level:

    3.0  the median held-out human text (better texts also score 3)
    2.5  human text with 5 % of its words misspelt
    2.0  15 % misspelt: "mild gibberish", mostly words, some non-words
    1.5  30 % misspelt
    1.0  word salad: real words in no sensible order
    0.0  random characters

The sets' medians and their mean scores must both come out in this order, or the scorer
refuses to calibrate (`CalibrationError`). The levels need texts of several words: a one-
or two-word text (a SQuAD answer) is its own word salad and is mostly left whole by 5 or
15 % misspelling, so a QA run scores a question with its answer (metrics/sanity.py).

A score between two levels reads as "between those two kinds of text"; for instance 2.2
is text about as damaged as human text with 10-15 % of its words misspelt. The score of a
set of texts (a generation's synthetic data) is the mean of its texts' scores.

Measured (`benchmarks/bench_gibberish.py`, mean ± standard error, benchmarks/RESULTS.md). On
WikiText-2 (fitted on the training split, 400 validation passages): human 2.77 ± 0.02, 5 %
misspelt 2.41 ± 0.02, 15 % 1.93 ± 0.01, 30 % 1.50 ± 0.01, word salad 1.01 ± 0.01, random
characters 0.00; SmolLM2's continuations 2.58. On TinyStories (fitted on 1,200 stories plus
the WikiText-2 background) real model output comes out in the order of its quality: human
2.69 ± 0.02, SmolLM2-135M's continuations 2.42 ± 0.05, a quickstart-sized scratch model after
500 steps 2.24 ± 0.03 ("He had a pretty help all! ... they wanted to make smach"), the same
after 50 steps 0.85 (word salad). In the quickstart (fitted on its human pool plus the
background) the human test text averages 2.85 and generation 0's continuations 2.38; the
scratch model's "When they'm unely the mean. The stoo had gold car and found a fewat dog"
(the knowledge-collapse framework's classifier grades it "mild gibberish") scores 1.00.

What it does not see: the statistics are local (characters, words, neighbouring pairs), so
text that is fluent word to word but says nothing, such as a collapsing model's generic,
repetitive stories, scores high. Diversity metrics and the external reference's
perplexity and surprisal (metrics/external.py) measure that side.

The empty text scores 0. `scores` works on many texts at once in whole-array numpy
operations (the refinery scores 100,000 records with it). A fitted scorer is stored under
$COLLAPSELAB_CACHE/gibberish/v4-<hash of the human text>.npz and reused.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collapselab.cache import cache_dir, filled
from collapselab.errors import CollapselabError
from collapselab.metrics.corruption import graded_sets

VERSION = "4"  # of the fitted file: bump when fitting changes what a cached scorer holds
# calibration set -> the score its median text gets, best first
LEVELS: dict[str, float] = {"human": 3.0, "misspelt 5 %": 2.5, "misspelt 15 %": 2.0, "misspelt 30 %": 1.5,
                            "word salad": 1.0, "random characters": 0.0}
STATISTICS = ("character plausibility", "word validity", "word order")
_UNK = 0  # character id of anything outside the fitted alphabet
_LAMBDA = 0.5  # weight of the bigram estimate in the interpolated word-pair probability
_ORDER_CAP = 3.0  # bits: one strong collocation must not outweigh many unrelated neighbours
_ORDER_CAP_PERCENTILES = (10, 25, 50)  # of held-out human text's word order: candidate per-text caps, lowest first
# Both words of a pair must be seen this often in the fitting text for the pair to be evidence
# of order: the first of these at which the graded sets come out in order (a small fitting
# text has few words seen 10 times; 1 is every known word).
_PAIR_MIN_COUNTS = (10, 3, 1)
_NO_PAIR = float(np.log2(1 - _LAMBDA))  # the association of a never-seen pair
_DIGITS = str.maketrans("0123456789", "0000000000")
_SENTENCE_END = (".", "!", "?", ":", ";", '"')


class CalibrationError(CollapselabError, ValueError):
    """Too little human text to fit or calibrate the scorer (the message says how much there was)."""


def _normal(text: str) -> str:
    """Lower-cased, every digit read as 0 (a number is a number, whichever it is)."""
    return text.lower().translate(_DIGITS)


def words(text: str) -> list[str]:
    """Normalised whitespace tokens without surrounding punctuation; pure punctuation dropped."""
    return [w for w in (tok.strip(string.punctuation) for tok in _normal(text).split()) if w]


def _word_tokens(text: str) -> tuple[list[str], list[bool]]:
    """Normalised words of `text` and, per word, whether it is capitalised inside a sentence."""
    out, names = [], []
    previous = "."  # the text's first word starts a sentence
    for tok in text.split():
        core = tok.strip(string.punctuation)
        if core:
            out.append(_normal(core))
            names.append(core[0].isupper() and not previous.endswith(_SENTENCE_END))
        previous = tok
    return out, names


def _lookup(codes: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Counts of `queries` in the sorted `codes` (0 when absent)."""
    if len(codes) == 0 or len(queries) == 0:
        return np.zeros(len(queries))
    pos = np.clip(np.searchsorted(codes, queries), 0, len(codes) - 1)
    return np.where(codes[pos] == queries, counts[pos], 0).astype(np.float64)


def _segment_mean(values: np.ndarray, segment: np.ndarray, n: int) -> np.ndarray:
    """Per-segment mean of `values` (NaN for an empty segment)."""
    total = np.bincount(segment, weights=values, minlength=n)
    size = np.bincount(segment, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, total / np.maximum(size, 1), np.nan)


@dataclass
class GibberishScorer:
    alphabet: str  # known characters; id = index + 1
    trigram_codes: np.ndarray  # sorted codes a*A^2 + b*A + c of seen character trigrams
    trigram_counts: np.ndarray
    context_codes: np.ndarray  # sorted codes a*A + b of seen character bigrams (trigram contexts)
    context_counts: np.ndarray
    vocabulary: list[str]  # words of the human text
    word_counts: np.ndarray  # (V,) count of each vocabulary word
    pair_codes: np.ndarray  # sorted codes i*V + j of word bigrams seen at least twice
    pair_counts: np.ndarray
    order_cap: np.ndarray  # () word order above this (the 10th percentile of held-out human text) counts as this
    pair_min_count: np.ndarray  # () pairs of words both seen at least this often in the fitting text are evidence of order
    weights: np.ndarray  # (4,) fluency = statistics @ weights[:3] + weights[3], weights[:3] >= 0
    anchors: np.ndarray  # (6,) median fluency of each calibration set, worst first (increasing)
    levels: np.ndarray  # (6,) score of each anchor, worst first
    calibration: np.ndarray  # (6,) mean score of each calibration set, worst first (what the levels give in practice)
    _word_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._word_index = {w: i for i, w in enumerate(self.vocabulary)}

    # -- statistics ----------------------------------------------------------------
    def statistics(self, texts: Sequence[str]) -> np.ndarray:
        """(N, 3): character log2-probability per character, word validity, word order in
        bits (NaN where a text has no character, no word, or no pair of known words)."""
        n = len(texts)
        a = len(self.alphabet) + 1
        normal = [_normal(t) for t in texts]
        # characters: one flat array of code points -> alphabet ids (0 = unknown)
        lens = np.fromiter((len(t) for t in normal), dtype=np.int64, count=n)
        lut = np.zeros(0x110000, dtype=np.int64)
        lut[np.fromiter((ord(c) for c in self.alphabet), dtype=np.int64)] = np.arange(1, a)
        ids = lut[np.frombuffer("".join(normal).encode("utf-32-le"), dtype=np.uint32)]
        seg = np.repeat(np.arange(n), lens)
        pos = np.arange(len(ids)) - np.repeat(np.cumsum(lens) - lens, lens)  # index inside its text
        prev1 = np.where(pos >= 1, np.roll(ids, 1), _UNK)  # two unknown boundary symbols before each text
        prev2 = np.where(pos >= 2, np.roll(ids, 2), _UNK)
        logp = np.log2((_lookup(self.trigram_codes, self.trigram_counts, prev2 * a * a + prev1 * a + ids) + 1.0)
                       / (_lookup(self.context_codes, self.context_counts, prev2 * a + prev1) + a))
        char = _segment_mean(logp, seg, n)
        # words: ids in the vocabulary (-1 unknown), whether each is accounted for
        wid, accounted, wlens = [], [], []
        for t in texts:
            ws, names = _word_tokens(t)
            repeated = Counter(ws)
            for w, name in zip(ws, names, strict=True):
                i = self._word_index.get(w, -1)
                wid.append(i)
                accounted.append(i >= 0 or repeated[w] > 1 or name)
            wlens.append(len(ws))
        wid_a = np.array(wid, dtype=np.int64)
        wseg = np.repeat(np.arange(n), np.array(wlens, dtype=np.int64))
        validity = _segment_mean(np.array(accounted, dtype=np.float64), wseg, n)
        # word order: association of adjacent frequent words of the same text. A pair of
        # rare words is unseen whether or not it is in sensible order, so only pairs of
        # words seen at least `pair_min_count` times are evidence of order.
        count = np.where(wid_a >= 0, self.word_counts[np.maximum(wid_a, 0)], 0)
        known = (wseg[:-1] == wseg[1:]) & (np.minimum(count[:-1], count[1:]) >= max(1, int(self.pair_min_count)))
        w1, w2 = wid_a[:-1][known], wid_a[1:][known]
        c12 = _lookup(self.pair_codes, self.pair_counts, w1 * len(self.vocabulary) + w2)
        c1, c2 = self.word_counts[w1].astype(np.float64), self.word_counts[w2].astype(np.float64)
        # log2 of the interpolated P(w2 | w1) over the unigram P(w2): about 0 for unrelated
        # neighbours, log2(1 - lambda) for a never-seen pair, large for collocations.
        assoc = np.minimum(np.log2(_LAMBDA * c12 * self.word_counts.sum() / (c1 * c2) + (1 - _LAMBDA)), _ORDER_CAP)
        order = _segment_mean(assoc, wseg[:-1][known], n)
        out = np.stack([char, np.where(np.isnan(validity), 0.0, validity), order], axis=1)
        out[np.array([not t.strip() for t in texts], dtype=bool)] = np.nan
        return out

    def fluency(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) the calibrated linear combination of the statistics (NaN for empty texts)."""
        return self._features(self.statistics(texts)) @ self.weights[:3] + self.weights[3]

    def _features(self, x: np.ndarray) -> np.ndarray:
        # No pair of known words: no evidence of order beyond unseen pairs. Order above the
        # cap is "in sensible order"; more collocations do not make a text more fluent, and
        # without the cap the topic-driven spread of human texts' order drowns the top levels.
        order = np.where(np.isnan(x[:, 2]) & ~np.isnan(x[:, 0]), _NO_PAIR, x[:, 2])
        return np.c_[x[:, :2], np.minimum(order, self.order_cap)]

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) gibberish scores in [0, 3]: 3 as fluent as human text, 0 random characters."""
        if len(texts) == 0:
            return np.zeros(0)
        f = self.fluency(texts)
        return np.where(np.isnan(f), 0.0, np.interp(np.nan_to_num(f, nan=0.0), self.anchors, self.levels))

    def score(self, text: str) -> float:
        """Gibberish score of one text in [0, 3]."""
        return float(self.scores([text])[0])

    def calibration_means(self) -> dict[str, float]:
        """Mean score of each calibration set (best first): what the levels give on the fitted text's kind."""
        return dict(zip(LEVELS, self.calibration[::-1].tolist(), strict=True))

    # -- persistence -----------------------------------------------------------------
    _ARRAYS = ("trigram_codes", "trigram_counts", "context_codes", "context_counts", "word_counts",
               "pair_codes", "pair_counts", "order_cap", "pair_min_count", "weights", "anchors", "levels", "calibration")

    def save(self, path: str | Path) -> None:
        """Write the scorer to the file `path` (the cache writes it through `collapselab.cache.filled`)."""
        meta = json.dumps({"version": VERSION, "alphabet": self.alphabet, "vocabulary": self.vocabulary})
        with Path(path).open("wb") as f:  # a file object: numpy adds no `.npz` to the name
            np.savez_compressed(f, meta=np.array(meta), **{k: getattr(self, k) for k in self._ARRAYS})

    @classmethod
    def load(cls, path: str | Path) -> GibberishScorer:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in cls._ARRAYS}
        return cls(alphabet=meta["alphabet"], vocabulary=meta["vocabulary"], **arrays)


def fit_gibberish_scorer(train_texts: Sequence[str], heldout_texts: Sequence[str], *, seed: int = 0) -> GibberishScorer:
    """Fit the statistics on `train_texts`; calibrate the 0-3 mapping on graded sets made from `heldout_texts`."""
    train = _normal("\n".join(train_texts))
    heldout = [t for t in heldout_texts if t.strip()]
    if not train.strip() or not heldout:
        raise CalibrationError("the gibberish scorer needs non-empty training and held-out human text")
    chars = sorted(set(train))
    a = len(chars) + 1
    index = {ch: i + 1 for i, ch in enumerate(chars)}
    ids = np.concatenate([[_UNK, _UNK], np.fromiter((index[ch] for ch in train), dtype=np.int64, count=len(train))])
    tri_codes, tri_counts = np.unique(ids[:-2] * a * a + ids[1:-1] * a + ids[2:], return_counts=True)
    ctx_codes, ctx_counts = np.unique(ids[:-2] * a + ids[1:-1], return_counts=True)
    tokens = [words(t) for t in train_texts]
    vocabulary = sorted({w for ws in tokens for w in ws})
    vid = {w: i for i, w in enumerate(vocabulary)}
    v = len(vocabulary)
    flat = np.fromiter((vid[w] for ws in tokens for w in ws), dtype=np.int64)
    word_counts = np.bincount(flat, minlength=v)
    pairs = np.fromiter((vid[x] * v + vid[y] for ws in tokens for x, y in zip(ws, ws[1:], strict=False)), dtype=np.int64)
    pair_codes, pair_counts = np.unique(pairs, return_counts=True)
    twice = pair_counts >= 2  # hapax pairs add size but little signal: treat them as unseen
    scorer = GibberishScorer("".join(chars), tri_codes, tri_counts, ctx_codes, ctx_counts, vocabulary, word_counts,
                             pair_codes[twice], pair_counts[twice], order_cap=np.array(np.inf), pair_min_count=np.array(1), weights=np.zeros(4),
                             anchors=np.zeros(len(LEVELS)), levels=np.array(list(LEVELS.values())[::-1]),
                             calibration=np.zeros(len(LEVELS)))
    frequencies = np.bincount(ids[2:], minlength=a)[1:].astype(np.float64)
    # A corrupted copy can come out blank (the random characters of a two-character answer can be
    # two spaces): it has no statistics and scores 0 by rule, so it is no evidence for the fit.
    sets = {name: [t for t in texts if t.strip()] for name, texts in graded_sets(heldout, chars, frequencies, seed).items()}
    medians, tied = None, ["no held-out text has a pair of known neighbouring words"]
    # The rarest-pair rule and the lowest cap at which the six sets' medians come out in
    # order. Pairs of words seen 10 times, and the cap at the 10th percentile of held-out
    # human text, for running text; a small fitting text has few frequent words, and short
    # texts (a question and its answer) have few word pairs, so a noisier order statistic:
    # they may need every known word's pairs and a higher cap.
    for min_count in _PAIR_MIN_COUNTS:
        scorer.pair_min_count = np.array(min_count)
        stats = {name: scorer.statistics(texts) for name, texts in sets.items()}
        human_order = stats["human"][:, 2]
        if np.isnan(human_order).all():
            continue
        for percentile in _ORDER_CAP_PERCENTILES:
            scorer.order_cap = np.array(np.nanpercentile(human_order, percentile))
            medians, tied = _fit_levels(scorer, stats)
            if not tied:
                break
        if not tied:
            break
    if tied:
        length = int(np.median([len(t.split()) for t in heldout]))
        raise CalibrationError(
            f"gibberish scorer: {len(train_texts)} human training texts ({len(flat)} words) and {len(heldout)} held-out "
            f"texts of {length} words (median) are too few or too short to calibrate: "
            f"{', '.join(tied)}{' not separated' if medians is not None else ''}; use more human text, or leave "
            "gibberish_score and gibberish_rate out of evaluation.metrics"
        )
    scorer.anchors = medians[::-1]
    scorer.calibration = np.array([float(scorer.scores(texts).mean()) for texts in sets.values()])[::-1]
    return scorer


def _fit_levels(scorer: GibberishScorer, stats: dict[str, np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Fit `scorer.weights` to the graded sets' statistics; their median fluencies (best first)
    and the neighbouring levels that are not in order.

    The medians anchor the levels, and the sets' mean scores must come out in the same order
    too: a set most of whose texts its corruption leaves as they were (word salad of one-word
    texts) can have its median in place while its texts score like the better level.
    """
    feats = {name: np.c_[scorer._features(x), np.ones(len(x))] for name, x in stats.items()}
    scorer.weights = _nonnegative_least_squares(np.concatenate(list(feats.values())),
                                                np.concatenate([np.full(len(f), LEVELS[name]) for name, f in feats.items()]))
    fluency = [feats[name] @ scorer.weights for name in LEVELS]
    medians = np.array([float(np.median(f)) for f in fluency])
    pairs = list(zip(LEVELS, list(LEVELS)[1:], strict=False))
    tied = [f"{better} vs {worse}" for (better, worse), hi, lo in zip(pairs, medians, medians[1:], strict=False) if not hi > lo]
    if tied:
        return medians, tied
    means = [float(np.interp(f, medians[::-1], scorer.levels).mean()) for f in fluency]
    return medians, [f"{better} vs {worse} (mean scores)" for (better, worse), hi, lo in zip(pairs, means, means[1:], strict=False)
                     if not hi > lo]


def _nonnegative_least_squares(design: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares weights with every weight but the last (the intercept) >= 0.

    Solved exactly by trying each subset of free weights (three statistics: eight small
    solves); a statistic that would need a negative weight is left out instead, so a
    better value of any statistic never lowers the score.
    """
    k = design.shape[1] - 1
    best, best_residual = np.zeros(k + 1), np.inf
    for mask in range(2**k):
        cols = [i for i in range(k) if mask >> i & 1] + [k]
        w = np.zeros(k + 1)
        w[cols] = np.linalg.lstsq(design[:, cols], target, rcond=None)[0]
        residual = float(((design @ w - target) ** 2).sum())
        if (w[:k] >= 0).all() and residual < best_residual:
            best, best_residual = w, residual
    return best


def cached_gibberish_scorer(human_texts: Sequence[str], *, heldout_texts: Sequence[str] | None = None,
                            background_texts: Sequence[str] = (), heldout_fraction: float = 0.1) -> GibberishScorer:
    """A scorer fitted on human text of the kind it will score, cached by content hash.

    The levels are calibrated on `heldout_texts` (the run's held-out human test set, as
    every other test metric is); without them, on a held-out share of `human_texts`
    (`heldout_fraction`, at least min(20, half) of them). The statistics are fitted on the
    rest and on all of `background_texts` (more human text of the same language, e.g. the QA
    contexts when questions and answers are scored).
    """
    texts = [t for t in human_texts if t.strip()]
    held = None if heldout_texts is None else [t for t in heldout_texts if t.strip()]
    background = [t for t in background_texts if t.strip()]
    parts = ("\x00".join(texts), "\x00".join(held) if held is not None else "", "\x00".join(background))
    digest = hashlib.sha256("\x01".join(parts).encode()).hexdigest()[:20]
    path = cache_dir("gibberish") / f"v{VERSION}-{digest}.npz"
    if path.exists():
        return GibberishScorer.load(path)
    if len(texts) < 5 or (held is not None and not held):
        raise CalibrationError(f"the gibberish scorer needs at least 5 human texts and held-out ones, got {len(texts)} "
                         f"and {len(held) if held is not None else 'none'}")
    if held is None:
        n = max(int(len(texts) * heldout_fraction), min(20, len(texts) // 2))
        texts, held = texts[:-n], texts[-n:]
    # fitted once: a second process (another trial on the same data) waits and loads this one's
    return GibberishScorer.load(filled(path, lambda tmp: fit_gibberish_scorer(background + texts, held).save(tmp)))

"""An offline gibberish score from 0 (random characters) to 3 (fluent human-like text).

No hub classifier is reachable, so the score is built from three plain statistics of
human text, each mapped to [0, 1] by a calibration on held-out human text and on two
corruptions of it:

1. character plausibility: mean log2-probability per character under a character
   trigram model (add-one smoothing, lower-cased) fitted on human text;
2. word validity: share of word tokens found in the vocabulary of the human text;
3. word order: mean over adjacent pairs of known words of log2(P(w2 | w1) / P(w2)), with
   P(w2 | w1) = 0.5 * bigram estimate + 0.5 * P(w2) (pairs seen once count as unseen):
   about 0 bits for unrelated neighbours (shuffled text), clearly positive for real
   sentences, whose neighbours are collocations.

For each statistic x, `good` is its 10th percentile on held-out human texts and `bad`
its median on the corruption that should fail it: random character strings (same
lengths, characters drawn independently with the human character frequencies, so they
have spaces and common letters) for 1 and 2, the same held-out texts with their words
shuffled for 3. The sub-score is
clip((x - bad) / (good - bad), 0, 1), and the score is the sum of the three:

    ~3  fluent text; ~2  real words in no sensible order (word salad, loops of unrelated
    words); ~1  plausible letter sequences that are not words; ~0  random characters.

Texts with no pair of known words have no word-order statistic: their word-order
sub-score is their word-validity sub-score. The empty text scores 0. A fitted scorer is stored under
$COLLAPSELAB_CACHE/gibberish/<hash of the training text>.npz and reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_UNK = 0  # character id of anything outside the fitted alphabet
_LAMBDA = 0.5  # weight of the bigram estimate in the interpolated word-pair probability


def _words(text: str) -> list[str]:
    """Lower-cased whitespace tokens without surrounding punctuation; pure punctuation dropped."""
    out = []
    for tok in text.lower().split():
        tok = tok.strip(string.punctuation)
        if tok:
            out.append(tok)
    return out


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
    good: np.ndarray  # (3,) calibration: held-out human 10th percentile per statistic
    bad: np.ndarray  # (3,) calibration: corruption median per statistic
    _char_index: dict[str, int] = field(init=False, repr=False)
    _word_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._char_index = {ch: i + 1 for i, ch in enumerate(self.alphabet)}
        self._word_index = {w: i for i, w in enumerate(self.vocabulary)}

    # -- statistics ----------------------------------------------------------------
    def statistics(self, text: str) -> np.ndarray:
        """(char log2-prob per char, word validity, word association in bits); NaN where undefined."""
        if not text.strip():
            return np.full(3, np.nan)
        a = len(self.alphabet) + 1
        lower = text.lower()
        ids = np.fromiter((self._char_index.get(ch, _UNK) for ch in lower), dtype=np.int64, count=len(lower))
        ids = np.concatenate([[_UNK, _UNK], ids])  # two boundary symbols
        tri = ids[:-2] * a * a + ids[1:-1] * a + ids[2:]
        ctx = ids[:-2] * a + ids[1:-1]
        logp = np.log2((_lookup(self.trigram_codes, self.trigram_counts, tri) + 1.0)
                       / (_lookup(self.context_codes, self.context_counts, ctx) + a))
        wid = np.array([self._word_index.get(w, -1) for w in _words(text)], dtype=np.int64)
        if len(wid) == 0:
            return np.array([logp.mean(), 0.0, np.nan])
        validity = float((wid >= 0).mean())
        known = (wid[:-1] >= 0) & (wid[1:] >= 0)
        if not known.any():
            return np.array([logp.mean(), validity, np.nan])
        w1, w2 = wid[:-1][known], wid[1:][known]
        c12 = _lookup(self.pair_codes, self.pair_counts, w1 * len(self.vocabulary) + w2)
        c1, c2 = self.word_counts[w1].astype(np.float64), self.word_counts[w2].astype(np.float64)
        # log2 of the interpolated P(w2 | w1) over the unigram P(w2): about 0 for unrelated
        # neighbours, log2(1 - lambda) for a never-seen pair, large for collocations.
        assoc = np.log2(_LAMBDA * c12 * self.word_counts.sum() / (c1 * c2) + (1 - _LAMBDA))
        return np.array([logp.mean(), validity, float(assoc.mean())])

    def sub_scores(self, text: str) -> np.ndarray:
        """The three calibrated sub-scores in [0, 1] (char plausibility, word validity, word order)."""
        x = self.statistics(text)
        if np.isnan(x[0]):
            return np.zeros(3)
        sub = np.clip((x - self.bad) / (self.good - self.bad), 0.0, 1.0)
        if np.isnan(x[2]):  # no pair of known words: order cannot be judged beyond validity
            sub[2] = sub[1]
        return sub

    def score(self, text: str) -> float:
        """Gibberish score in [0, 3]: 3 is fluent human-like text, 0 random characters."""
        return float(self.sub_scores(text).sum())

    def scores(self, texts: Sequence[str]) -> list[float]:
        return [self.score(t) for t in texts]

    # -- persistence -----------------------------------------------------------------
    _ARRAYS = ("trigram_codes", "trigram_counts", "context_codes", "context_counts", "word_counts",
               "pair_codes", "pair_counts", "good", "bad")

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        meta = json.dumps({"alphabet": self.alphabet, "vocabulary": self.vocabulary})
        np.savez_compressed(tmp, meta=np.array(meta), **{k: getattr(self, k) for k in self._ARRAYS})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> GibberishScorer:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in cls._ARRAYS}
        return cls(alphabet=meta["alphabet"], vocabulary=meta["vocabulary"], **arrays)


def _lookup(codes: np.ndarray, counts: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Counts of `queries` in the sorted `codes` (0 when absent)."""
    if len(codes) == 0:
        return np.zeros(len(queries))
    pos = np.clip(np.searchsorted(codes, queries), 0, len(codes) - 1)
    return np.where(codes[pos] == queries, counts[pos], 0).astype(np.float64)


def fit_gibberish_scorer(train_texts: Sequence[str], heldout_texts: Sequence[str], *, seed: int = 0) -> GibberishScorer:
    """Fit the statistics on `train_texts` and calibrate the 0-3 mapping on `heldout_texts`."""
    train = "\n".join(train_texts).lower()
    if not train.strip() or not heldout_texts:
        raise ValueError("the gibberish scorer needs non-empty training and held-out human text")
    chars = sorted(set(train))
    a = len(chars) + 1
    index = {ch: i + 1 for i, ch in enumerate(chars)}
    ids = np.concatenate([[_UNK, _UNK], np.fromiter((index[ch] for ch in train), dtype=np.int64, count=len(train))])
    tri_codes, tri_counts = np.unique(ids[:-2] * a * a + ids[1:-1] * a + ids[2:], return_counts=True)
    ctx_codes, ctx_counts = np.unique(ids[:-2] * a + ids[1:-1], return_counts=True)
    words = [_words(t) for t in train_texts]
    vocabulary = sorted({w for ws in words for w in ws})
    vid = {w: i for i, w in enumerate(vocabulary)}
    v = len(vocabulary)
    flat = np.fromiter((vid[w] for ws in words for w in ws), dtype=np.int64)
    word_counts = np.bincount(flat, minlength=v)
    pairs = np.fromiter((vid[x] * v + vid[y] for ws in words for x, y in zip(ws, ws[1:], strict=False)), dtype=np.int64)
    pair_codes, pair_counts = np.unique(pairs, return_counts=True)
    twice = pair_counts >= 2  # hapax pairs add size but little signal: treat them as unseen
    scorer = GibberishScorer("".join(chars), tri_codes, tri_counts, ctx_codes, ctx_counts, vocabulary, word_counts,
                             pair_codes[twice], pair_counts[twice], good=np.ones(3), bad=np.zeros(3))
    rng = random.Random(seed)
    weights = np.bincount(ids[2:], minlength=a)[1:].astype(np.float64)
    human = np.array([scorer.statistics(t) for t in heldout_texts if t.strip()])
    shuffled = np.array([scorer.statistics(shuffle_words(t, rng)) for t in heldout_texts if t.strip()])
    rand = np.array([scorer.statistics(random_characters(t, chars, weights, rng)) for t in heldout_texts if t.strip()])
    scorer.good = np.nanpercentile(human, 10, axis=0)
    scorer.bad = np.array([np.nanmedian(rand[:, 0]), np.nanmedian(rand[:, 1]), np.nanmedian(shuffled[:, 2])])
    failed = ~(scorer.good > scorer.bad)  # NaN (nothing to calibrate on) fails too
    if failed.any():
        names = [n for n, bad in zip(("character plausibility", "word validity", "word order"), failed, strict=True) if bad]
        raise ValueError(
            f"gibberish scorer: {len(train_texts)} human training texts ({len(flat)} words) are too few to calibrate "
            f"{', '.join(names)} (held-out human {scorer.good} not above corrupted {scorer.bad}); use more human "
            "text, or leave gibberish_score and gibberish_rate out of evaluation.metrics"
        )
    return scorer


def shuffle_words(text: str, rng: random.Random) -> str:
    """The same whitespace tokens in random order (a word-salad corruption)."""
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


def random_characters(text: str, alphabet: Sequence[str], weights: Sequence[float] | None, rng: random.Random) -> str:
    """A string of the same length, characters drawn independently from `alphabet`.

    With `weights` (the human character frequencies) the string has realistic letters and
    spaces, so it looks like words at a glance; without, characters are uniform.
    """
    return "".join(rng.choices(alphabet, weights=weights, k=len(text)))


def cached_gibberish_scorer(human_texts: Sequence[str], *, heldout_fraction: float = 0.1) -> GibberishScorer:
    """Fit on human texts (the last `heldout_fraction` held out for calibration), cached by content hash."""
    texts = [t for t in human_texts if t.strip()]
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    from collapselab.cache import cache_dir

    path = cache_dir("gibberish") / f"v1-{digest}.npz"
    if path.exists():
        return GibberishScorer.load(path)
    if len(texts) < 5:
        raise ValueError(f"the gibberish scorer needs at least 5 human texts, got {len(texts)}")
    cut = len(texts) - max(1, int(len(texts) * heldout_fraction))
    scorer = fit_gibberish_scorer(texts[:cut], texts[cut:])
    scorer.save(path)
    return scorer

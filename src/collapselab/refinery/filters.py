"""Quality filters for synthetic QA records: one function each, one reason code each.

Every filter takes the records still alive (in candidate order) and a `FilterContext`
(the human seed, the thresholds, lazily built seed indexes) and returns, per record,
None (kept) or a `Rejection` naming its reason code, the measured value and the
threshold. Set-level filters (duplicates) judge a record against the seed and the
earlier alive records, so the first of a group survives.

What a filter reads: record-local filters read the fields they are about; the duplicate
and seed-similarity filters read the record's question-answer text (question, then its
first answer), because the context is copied from a seed record by every strategy and
would make every candidate a copy of its parent.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collapselab.config.refinery import FiltersConfig
from collapselab.metrics.gibberish import CalibrationError, cached_gibberish_scorer
from collapselab.metrics.semantic import embed
from collapselab.records import Record
from collapselab.refinery.minhash import near_duplicate_of, signatures, word_shingles

EXACT_DUPLICATE = "exact_duplicate"
NEAR_DUPLICATE = "near_duplicate"
SEED_NGRAM_OVERLAP = "seed_ngram_overlap"
SEED_EMBEDDING_SIMILARITY = "seed_embedding_similarity"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
ANSWER_NOT_IN_CONTEXT = "answer_not_in_context"
GIBBERISH = "gibberish"
REASONS = (EXACT_DUPLICATE, NEAR_DUPLICATE, SEED_NGRAM_OVERLAP, SEED_EMBEDDING_SIMILARITY, TOO_SHORT, TOO_LONG,
           ANSWER_NOT_IN_CONTEXT, GIBBERISH)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str  # one of REASONS
    value: float | None = None  # what was measured (words, similarity, overlap, score)
    threshold: float | None = None
    detail: str | None = None  # e.g. the id of the record it duplicates


@dataclass
class FilterContext:
    """The human seed and thresholds; seed indexes are built on first use and reused."""

    seed: Sequence[Record]
    cfg: FiltersConfig
    _cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]


Filter = Callable[[Sequence[Record], FilterContext], list[Rejection | None]]


def qa_text(r: Record) -> str:
    """The question-answer text the duplicate and seed filters compare."""
    return f"{r.question or ''} {r.answers[0] if r.answers else ''}".strip()


_DROP_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """SQuAD's answer normalisation (`metrics.qa.normalize_answer`: lower case, no ASCII
    punctuation, no articles, single spaces) with str.translate: ~10x faster on contexts,
    which the answer filter normalises once per record; a test checks they agree."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_DROP_PUNCT)).split())


def _words(text: str) -> list[str]:
    return normalize(text).split()


# ---------------------------------------------------------------- record-local


def length_bounds(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """too_short / too_long: question and answer word counts outside the configured bounds."""
    c = ctx.cfg
    out: list[Rejection | None] = []
    for r in records:
        q = len((r.question or "").split())
        a = len(r.answers[0].split()) if r.answers else 0
        if q < c.min_question_words:
            out.append(Rejection(TOO_SHORT, q, c.min_question_words, "question"))
        elif q > c.max_question_words:
            out.append(Rejection(TOO_LONG, q, c.max_question_words, "question"))
        elif a < c.min_answer_words:
            out.append(Rejection(TOO_SHORT, a, c.min_answer_words, "answer"))
        elif a > c.max_answer_words:
            out.append(Rejection(TOO_LONG, a, c.max_answer_words, "answer"))
        else:
            out.append(None)
    return out


def answer_present(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """answer_not_in_context: no answer occurs (normalised, on word boundaries) in the
    context, as `metrics.qa.answer_in_context` decides; no answer (abstaining) is fine."""
    contexts: dict[str, str] = {}  # strategies reuse a seed context many times: normalise once
    out: list[Rejection | None] = []
    for r in records:
        found = not r.answers
        if not found:
            c = r.context or ""
            if c not in contexts:
                contexts[c] = f" {normalize(c)} "
            found = any(not (a_n := normalize(a)) or f" {a_n} " in contexts[c] for a in r.answers)
        out.append(None if found else Rejection(ANSWER_NOT_IN_CONTEXT))
    return out


def gibberish(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """gibberish: question + answer scores below the threshold (0 random characters .. 3 as
    fluent as the seed's questions and answers), the scorer fitted on the seed (cached by content hash)."""
    scorer = ctx.cached("gibberish", lambda: _seed_gibberish_scorer(ctx.seed))
    t = ctx.cfg.gibberish_min_score
    return [Rejection(GIBBERISH, float(s), t) if s < t else None for s in scorer.scores([qa_text(r) for r in records])]


def _seed_gibberish_scorer(seed: Sequence[Record]) -> Any:
    """The filter's scorer, fitted on the seed.

    Levels are calibrated on the seed's own questions and answers, so "3" means "like a human
    question + answer", not "like a context"; the contexts add vocabulary and word pairs. A
    small seed (a few dozen questions) holds out too few of them for the graded levels to
    separate: then the levels are calibrated on the sentences of a held-out fifth of the
    seed's contexts instead (human text of the same domain, kept out of the statistics), so
    "3" means "like a human sentence on these topics".
    """

    qa = [qa_text(r) for r in seed]
    contexts = [c for c in dict.fromkeys(r.context or "" for r in seed) if c.strip()]
    try:
        return cached_gibberish_scorer(qa, background_texts=contexts)
    except CalibrationError:
        if len(contexts) < 2:
            raise
    k = max(1, len(contexts) // 5)
    sentences = [s for c in contexts[-k:] for s in re.split(r"(?<=[.!?])\s+", c) if len(s.split()) >= 4]
    return cached_gibberish_scorer(qa, heldout_texts=sentences, background_texts=contexts[:-k])


# ---------------------------------------------------------------- duplicates


def _exact_key(r: Record, contexts: dict[str, str]) -> bytes:
    # Normalised like SQuAD answers (case, punctuation, articles, whitespace), so a copy
    # that differs only in those is still a copy. Contexts repeat: normalise each once.
    c = r.context or ""
    if c not in contexts:
        contexts[c] = normalize(c)
    parts = (contexts[c], normalize(r.question or ""), normalize(r.answers[0] if r.answers else ""))
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).digest()


def exact_duplicate(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """exact_duplicate: same normalised (context, question, answer) as a seed record or an earlier candidate."""
    contexts: dict[str, str] = ctx.cached("normalised_contexts", dict)
    seen = dict(ctx.cached("seed_exact", lambda: {_exact_key(s, contexts): s.id for s in ctx.seed}))
    out: list[Rejection | None] = []
    for r in records:
        k = _exact_key(r, contexts)
        if k in seen:
            out.append(Rejection(EXACT_DUPLICATE, 1.0, 1.0, seen[k]))
        else:
            seen[k] = r.id
            out.append(None)
    return out


def near_duplicate(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """near_duplicate: MinHash-LSH estimated Jaccard of question-answer word 3-grams with an
    earlier kept candidate at or above the threshold."""

    t = ctx.cfg.near_duplicate_jaccard
    sigs = signatures([word_shingles(_words(qa_text(r))) for r in records], ctx.cfg.minhash_num_perm)
    return [
        None if hit is None else Rejection(NEAR_DUPLICATE, hit[1], t, records[hit[0]].id)
        for hit in near_duplicate_of(sigs, t)
    ]


# ---------------------------------------------------------------- similarity to the seed


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def seed_ngram_overlap(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """seed_ngram_overlap: share of the record's word n-grams found in any seed record's
    question-answer text at or above the threshold (texts under n words have no n-grams
    and pass)."""
    n, t = ctx.cfg.seed_ngram_n, ctx.cfg.seed_ngram_max_overlap
    seed = ctx.cached(f"seed_ngrams_{n}", lambda: set().union(*(_ngrams(_words(qa_text(s)), n) for s in ctx.seed)))
    out: list[Rejection | None] = []
    for r in records:
        grams = _ngrams(_words(qa_text(r)), n)
        share = len(grams & seed) / len(grams) if grams else 0.0
        out.append(Rejection(SEED_NGRAM_OVERLAP, share, t) if grams and share >= t else None)
    return out


def nearest_similarity(queries: np.ndarray, keys: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Cosine to the nearest key and its index for unit-length rows, in chunks of queries
    so the (chunk, keys) similarity matrix stays small."""
    best = np.empty(len(queries), dtype=np.float32)
    where = np.empty(len(queries), dtype=np.int64)
    for s in range(0, len(queries), chunk):
        sim = queries[s : s + chunk] @ keys.T  # (chunk, K)
        where[s : s + chunk] = sim.argmax(axis=1)
        best[s : s + chunk] = sim[np.arange(len(sim)), where[s : s + chunk]]
    return best, where


def seed_embedding_similarity(records: Sequence[Record], ctx: FilterContext) -> list[Rejection | None]:
    """seed_embedding_similarity: cosine of the question-answer text to the nearest seed
    record's (local all-MiniLM-L6-v2, unit vectors) at or above the threshold."""

    t = ctx.cfg.seed_embedding_max_similarity
    if not records:
        return []
    keys = ctx.cached("seed_embeddings", lambda: embed([qa_text(s) for s in ctx.seed]))
    best, where = nearest_similarity(embed([qa_text(r) for r in records]), keys)
    return [
        Rejection(SEED_EMBEDDING_SIMILARITY, float(b), t, ctx.seed[int(w)].id) if b >= t else None
        for b, w in zip(best, where, strict=True)
    ]


FILTERS: dict[str, Filter] = {
    "length_bounds": length_bounds,
    "answer_in_context": answer_present,
    "gibberish": gibberish,
    "exact_duplicate": exact_duplicate,
    "near_duplicate": near_duplicate,
    "seed_ngram_overlap": seed_ngram_overlap,
    "seed_embedding_similarity": seed_embedding_similarity,
}

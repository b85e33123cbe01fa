"""Domain text for one MMLU subject, offline: the training articles most about that subject.

The knowledge-collapse framework's `--mmlu_topic` trains on Wikipedia text from one
subject's domain and evaluates MMLU on that subject. Offline, the domain text here is
chosen from the dataset's own human articles (WikiText-2: 600 Good and Featured Wikipedia
articles): each article (the records sharing a `title`) is ranked by BM25 against the
words of the subject's MMLU *dev and val* questions and choices, and the top `articles`
are kept. The test questions, which MMLU evaluates, are never read, so nothing of the test
leaks into training. It is keyword retrieval over a small general corpus: the top articles
are on topic (high_school_biology: Protein, Cell nucleus, Chagas disease, species articles)
and the tail drifts, so `articles` should stay small (WikiText-2 holds few articles on any
one subject).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from collapselab.datasets import DatasetError, load_mmlu
from collapselab.records import Record

# Words that carry no topic; short words (<= 2 letters) are dropped too.
_STOP = frozenset(
    "the and for that with was were are from this which not has have had but also his her their they she you "
    "what who whom whose when where why how all any each than then there these those can could would should "
    "may might will shall does did into out about over under more most such nor only own same too very just "
    "one two three four following true false none statement statements its".split()
)
K1, B = 1.2, 0.75  # the usual BM25 constants


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words of `text`, stop words and words of <= 2 letters left out."""
    return [w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2 and w not in _STOP]


def subject_query(subject: str, mmlu_path: str | None = None) -> Counter[str]:
    """Word counts of the subject's MMLU dev and val questions and choices (never test)."""

    q: Counter[str] = Counter()
    for split in ("dev", "val"):
        for r in load_mmlu(split, [subject], mmlu_path):
            q.update(words(" ".join([r.question or "", *r.choices])))
    return q


def rank_articles(docs: Sequence[Record], query: Counter[str]) -> list[tuple[str, float]]:
    """Article titles of `docs` by BM25 against `query`, best first (ties by title).

    Each query word counts with weight log(1 + its count), so the words the subject's
    questions use most weigh most without letting one word dominate.
    """
    text: dict[str, list[str]] = defaultdict(list)
    for d in docs:
        text[d.title or ""].append(d.text or "")
    bags = {t: Counter(words(" ".join(parts))) for t, parts in text.items()}
    n = len(bags)
    avg = sum(sum(b.values()) for b in bags.values()) / max(1, n)
    df = Counter(w for b in bags.values() for w in b)
    weights = {w: math.log1p(c) for w, c in query.items()}
    scores = []
    for title, bag in bags.items():
        length = sum(bag.values())
        s = 0.0
        for w, qw in weights.items():
            f = bag.get(w, 0)
            if f:
                idf = math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5))
                s += qw * idf * f * (K1 + 1) / (f + K1 * (1 - B + B * length / avg))
        scores.append((title, s))
    return sorted(scores, key=lambda x: (-x[1], x[0]))


def topic_documents(docs: Sequence[Record], subject: str, articles: int, mmlu_path: str | None = None) -> list[Record]:
    """The records of the `articles` articles of `docs` most about MMLU `subject`, in file order.

    Args:
        docs: Human records with a `title` (WikiText-2: one per paragraph, titled by article).
        subject: An MMLU subject, e.g. high_school_biology.
        articles: How many articles to keep.
        mmlu_path: The MMLU folder; else $COLLAPSELAB_DATA/mmlu.

    Raises:
        DatasetError: No MMLU dev/val files for the subject, or the records have no titles.
    """

    if not any(d.title for d in docs):
        raise DatasetError("data.topic: the training records have no titles (articles) to rank; use a dataset with titled articles such as wikitext2")
    ranked = rank_articles(docs, subject_query(subject, mmlu_path))
    keep = {t for t, _ in ranked[:articles]}
    return [d for d in docs if (d.title or "") in keep]

"""Prompts and strategies that turn a human seed QA record into new candidates.

The generator (the base model, or `refinery.generator_model`) is fine-tuned on the human
seed in two formats, answering and question generation (both from
`collapselab.models.prompts`). What each strategy produces:

- question_paraphrase: same context and answer, a question the generator writes for
  that answer (with sampling, so it words it its own way).
- question_variants: same context, a *different* answer span picked from the context
  (a name, a number or a capitalised phrase); the generator writes a question for it,
  then answers that question itself; the record's answer is the generator's answer,
  which the `answer_in_context` filter validates (round-trip agreement with the picked
  span is reported too).
- context_augmentation: the context with one sentence that does not hold the answer
  dropped (or, with only two sentences, their order swapped), and a question the
  generator writes for the same answer on that new context.
- answer_expansion: same context and question; the answer span extended in the context
  to the end of its clause (at most `max_expansion_words` words). Rule-based: a scratch
  generator ends its answers after the span it learned, so it cannot expand them.
- answer_paraphrase (contaminated arm only): a surface rewrite of the human answer
  (an article added or dropped, the span widened or narrowed by a word, a small number
  written out). A scratch model cannot paraphrase; this is the kind of variation an
  LLM's rewrite of a reference answer has, said plainly rather than pretended.
"""

from __future__ import annotations

import random
import re

from collapselab.records import Record

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# names, numbers and capitalised phrases: answer-like spans a question can be asked about
SPAN = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][\w'-]+(?:\s+(?:of\s+)?[A-Z][\w'-]+)*)\b")
CLAUSE_END = re.compile(r"[.,;:!?()\"]")
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"]


def answer_of(r: Record) -> str:
    return r.answers[0] if r.answers else ""


def _find(context: str, answer: str) -> int:
    at = context.find(answer)
    return at if at >= 0 else context.lower().find(answer.lower())


def augment_context(context: str, answer: str, rng: random.Random) -> str | None:
    """Drop one sentence that does not hold the answer, or swap two; None when impossible."""
    sents = [s for s in SENTENCE_END.split(context.strip()) if s]
    holds = [bool(answer) and answer.lower() in s.lower() for s in sents]
    if answer and not any(holds):
        return None  # the answer is not a span of the context (e.g. CosmosQA): keep it whole
    others = [i for i, h in enumerate(holds) if not h]
    if len(sents) >= 3 and others:
        drop = rng.choice(others)
        return " ".join(s for i, s in enumerate(sents) if i != drop)
    if len(sents) == 2:
        return f"{sents[1]} {sents[0]}"
    return None


def variant_span(context: str, avoid: str, rng: random.Random) -> str | None:
    """A random answer-like span of the context other than `avoid`; None if there is none."""
    spans = list(dict.fromkeys(m.group(0) for m in SPAN.finditer(context)))
    spans = [s for s in spans if s.lower() != avoid.lower() and len(s) > 1]
    return rng.choice(spans) if spans else None


def expand_answer(context: str, answer: str, max_words: int) -> str | None:
    """The answer span extended rightwards to the end of its clause; None if it cannot grow."""
    at = _find(context, answer) if answer else -1
    if at < 0:
        return None
    rest = context[at + len(answer) :]
    stop = CLAUSE_END.search(rest)
    extra = (rest[: stop.start()] if stop else rest).split()[:max_words]
    return f"{context[at : at + len(answer)]} {' '.join(extra)}" if extra else None


def paraphrase_answer(answer: str, context: str, rng: random.Random) -> str:
    """A surface rewrite of a human answer (see the module docstring); '' stays ''."""
    if not answer:
        return answer
    words = answer.split()
    options = []
    if words[0].lower() in ("the", "a", "an") and len(words) > 1:
        options.append(" ".join(words[1:]))
    else:
        options.append(f"the {answer}")
    if len(words) >= 3:
        options.append(" ".join(words[:-1]))
    wider = expand_answer(context, answer, 1)
    if wider:
        options.append(wider)
    for i, w in enumerate(words):
        if w.isdigit() and int(w) < len(NUMBER_WORDS):
            options.append(" ".join(words[:i] + [NUMBER_WORDS[int(w)]] + words[i + 1 :]))
            break
    return rng.choice(options)

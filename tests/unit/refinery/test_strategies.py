"""The refinery's candidate strategies: what each must produce from a seed record, and what it
must never produce (a dropped answer, an unchanged "paraphrase", a span that is not in the
context, a question-generation prompt whose answer or cue was cut)."""

from __future__ import annotations

import random

import pytest

from collapselab.config import PromptsBlock
from collapselab.models.prompts import PromptFormat
from collapselab.refinery.strategies import (
    SENTENCE_END,
    SPAN,
    augment_context,
    expand_answer,
    paraphrase_answer,
    variant_span,
)

CONTEXT = ("Anna lives in Paris with a black cat. Anna works as a baker in the old town. "
           "Last year Anna turned 42 and moved near the river. On weekends Anna walks in the park.")
SEEDS = range(60)


def _sentences(text: str) -> list[str]:
    return SENTENCE_END.split(text.strip())


# ---- augment_context ------------------------------------------------------------------

def test_augment_drops_one_sentence_never_the_answers():
    sents = _sentences(CONTEXT)
    dropped = set()
    for seed in SEEDS:
        out = augment_context(CONTEXT, "a baker", random.Random(seed))
        kept = _sentences(out)
        assert len(kept) == len(sents) - 1 and "a baker" in out
        missing = [s for s in sents if s not in kept]
        assert len(missing) == 1 and kept == [s for s in sents if s != missing[0]]  # order kept
        dropped.add(missing[0])
    # every sentence without the answer can go, the answer's never does
    assert dropped == {s for s in sents if "a baker" not in s}


def test_augment_matches_the_answer_case_insensitively():
    for seed in SEEDS:
        assert "Paris" in augment_context(CONTEXT, "paris", random.Random(seed))


def test_augment_swaps_two_sentences_and_refuses_what_it_cannot_change():
    two = "Anna lives in Paris. Boris lives in Oslo."
    assert augment_context(two, "Oslo", random.Random(0)) == "Boris lives in Oslo. Anna lives in Paris."
    assert augment_context("Anna lives in Paris.", "Paris", random.Random(0)) is None
    # the answer is not a span of the context (CosmosQA): the context stays whole
    assert augment_context(CONTEXT, "a happy dog", random.Random(0)) is None


def test_augment_of_an_unanswerable_question_may_drop_any_sentence():
    outs = {augment_context(CONTEXT, "", random.Random(seed)) for seed in SEEDS}
    assert len(outs) == len(_sentences(CONTEXT))
    assert all(len(_sentences(o)) == len(_sentences(CONTEXT)) - 1 for o in outs)


# ---- variant_span ---------------------------------------------------------------------

def test_variant_span_is_another_answer_like_span_of_the_context():
    context = "The Bank of England was founded in 1694 by William Paterson. It sits in London."
    seen = {variant_span(context, "london", random.Random(seed)) for seed in SEEDS}
    # names, numbers, capitalised phrases ("of" may join them); never the avoided one
    assert seen == {"The Bank of England", "1694", "William Paterson", "It"}
    for span in seen:
        assert span in context and SPAN.fullmatch(span)


def test_variant_span_skips_single_characters_and_may_find_nothing():
    assert variant_span("Room 5 is on floor A of Oslo.", "Room", random.Random(0)) == "Oslo"
    assert variant_span("the cat sat on the mat, 3 times.", "", random.Random(0)) is None
    assert variant_span("Oslo is cold.", "OSLO", random.Random(0)) is None


# ---- expand_answer --------------------------------------------------------------------

def test_expand_answer_grows_to_the_end_of_its_clause():
    assert expand_answer(CONTEXT, "Paris", 10) == "Paris with a black cat"
    assert expand_answer(CONTEXT, "Paris", 2) == "Paris with a"
    assert expand_answer("In 1066, Normans came, and stayed.", "Normans", 10) == "Normans came"
    # the context's own casing, not the answer's
    assert expand_answer(CONTEXT, "paris", 1) == "Paris with"


def test_expand_answer_refuses_what_cannot_grow():
    assert expand_answer(CONTEXT, "the park", 5) is None  # its clause ends right after it
    assert expand_answer(CONTEXT, "Berlin", 5) is None  # not in the context
    assert expand_answer(CONTEXT, "", 5) is None  # unanswerable


# ---- paraphrase_answer ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("answer", "options"),
    [
        ("a black cat", {"black cat", "a black"}),  # its clause ends after it: no widening
        ("Paris", {"the Paris", "Paris with"}),
        ("42", {"the 42", "42 and"}),
        ("the old town", {"old town", "the old"}),
        ("5 cats", {"the 5 cats", "five cats"}),
    ],
)
def test_paraphrase_answer_is_a_surface_rewrite_never_the_answer(answer, options):
    context = CONTEXT + " Anna has 5 cats"  # "5 cats" ends the context: it cannot widen
    seen = {paraphrase_answer(answer, context, random.Random(seed)) for seed in SEEDS}
    assert seen == options and answer not in seen


def test_paraphrase_of_no_answer_stays_no_answer():
    assert paraphrase_answer("", CONTEXT, random.Random(0)) == ""


# ---- the question-generation prompt (prompts.PromptFormat.qg, plain format) -------------

def _chars(text: str, add_special_tokens: bool) -> dict:
    assert add_special_tokens is False
    return {"input_ids": [ord(c) for c in text]}


def _text(ids: list[int]) -> str:
    return "".join(map(chr, ids))


QG = PromptFormat(_chars, PromptsBlock(format="plain"))


def test_qg_prompt_is_context_then_answer_then_the_question_cue():
    prompt = QG.qg("Anna lives in Paris.", "Paris", 1000)
    assert _text(prompt.prefix) == "Context: Anna lives in Paris."  # shared by every answer of a context
    assert _text(prompt.ids) == "Context: Anna lives in Paris.\nAnswer: Paris\nQuestion:"


def test_qg_prompt_cuts_the_context_from_the_left_only():
    tail = "\nAnswer: Paris\nQuestion:"
    out = _text(QG.qg(CONTEXT, "Paris", 60).ids)
    assert len(out) == 60 and out.endswith(tail)  # the answer and the cue survive whole
    assert ("Context: " + CONTEXT).endswith(out[: -len(tail)])  # the context's end is kept
    # shorter than the answer part itself: the end of it, never more than max_len
    assert _text(QG.qg(CONTEXT, "Paris", 10).ids) == tail[-10:]

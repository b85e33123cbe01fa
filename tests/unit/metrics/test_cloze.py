"""cloze_accuracy: which spans become questions, and that the true span is chosen exactly
when the model gives its tokens the highest mean log-probability."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tiny import bpe_tokenizer, llama

from collapselab.metrics import EvalInputs, evaluate
from collapselab.metrics.cloze import CHOICES, cloze_items, span_logprobs
from collapselab.records import Record

CITIES = ["Paris", "Berlin", "Madrid", "Vienna", "Oslo", "Lisbon"]
TEXTS = [f"In the spring of {1900 + 7 * i} the old painter moved from his village to {c} and opened a shop . "
         f"He sold it in {1950 + i} ." for i, c in enumerate(CITIES)]


def test_items_are_years_and_names_with_distractors_of_their_kind():
    items = cloze_items(TEXTS, n=100, seed=0)
    assert len(items) == len(TEXTS)  # at most one per text
    for it in items:
        assert len(it.choices) == CHOICES == len(set(it.choices)) and it.answer in it.choices
        assert it.answer not in it.prefix and len(it.prefix.split()) >= 6
        if it.kind == "name":
            assert it.answer in CITIES and set(it.choices) <= set(CITIES)
        else:
            assert it.answer.isdigit() and all(c.isdigit() for c in it.choices)
    assert cloze_items(TEXTS, n=100, seed=0) == items  # the same questions at every generation


def test_a_name_that_starts_a_sentence_or_a_short_prefix_is_not_asked():
    assert cloze_items(["Paris is big . Berlin is big . Oslo is small ."] * 3, n=10) == []


class _Oracle:
    """A stand-in causal LM that knows each question's prefix and, after it, favours the
    tokens of the true span (`right`) or of its distractors (not `right`)."""

    def __init__(self, tokenizer, right: bool) -> None:
        self.vocab, self.known = len(tokenizer), []
        ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
        for it in cloze_items(TEXTS):
            favoured = {i for c in it.choices if (c == it.answer) == right for i in ids(" " + c)}
            others = {i for c in it.choices if (c == it.answer) != right for i in ids(" " + c)}
            self.known.append((ids(it.prefix.rstrip()), favoured - others))

    def eval(self):
        return self

    def __call__(self, input_ids, attention_mask):
        import torch

        logits = torch.zeros(*input_ids.shape, self.vocab)  # (B, T, V)
        for row, seq in enumerate(input_ids.tolist()):
            for prefix, favoured in self.known:
                if seq[: len(prefix)] == prefix:
                    logits[row, :, sorted(favoured)] = 5.0
        return SimpleNamespace(logits=logits)


@pytest.fixture(scope="module")
def tokenizer():
    return bpe_tokenizer(TEXTS * 5, 200, ["<unk>", "<pad>", "<eos>"], byte_level=False)


def _accuracy(model, tokenizer) -> float:
    inputs = EvalInputs(task="lm", test=[], model=model, tokenizer=tokenizer,
                        human_train=[Record(id=f"t{i}", text=t) for i, t in enumerate(TEXTS)])
    result = evaluate(["cloze_accuracy"], inputs)["cloze_accuracy"]
    assert result.details["items"] == len(TEXTS) and result.details["chance"] == 1 / CHOICES
    return result.value


def test_the_span_the_model_prefers_is_its_answer(tokenizer):
    assert _accuracy(_Oracle(tokenizer, right=True), tokenizer) == 1.0
    assert _accuracy(_Oracle(tokenizer, right=False), tokenizer) == 0.0


def test_batched_span_scores_equal_one_at_a_time(tokenizer):
    model = llama(len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    pairs = [(it.prefix, c) for it in cloze_items(TEXTS) for c in it.choices]
    together = span_logprobs(model, tokenizer, pairs, batch_tokens=4096)
    alone = [span_logprobs(model, tokenizer, [p], batch_tokens=4096)[0] for p in pairs]
    assert together == pytest.approx(alone, abs=1e-5)

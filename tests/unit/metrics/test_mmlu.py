"""MMLU prompts, parsing and scoring with tiny random models (causal and seq2seq)."""

from __future__ import annotations

import copy

import pytest
import torch

from collapselab.metrics.mmlu import (
    SUBJECT_GROUP,
    build_prompt,
    continuations,
    evaluate_mmlu,
    parse_generation,
)
from collapselab.metrics.mmlu_scoring import option_logprobs
from collapselab.records import Record

LABELS = [0, 1, 1, 2, 3, 1, 0, 1, 2, 1]
RECORDS = [
    Record(id=f"q{i}", question=f"Which animal sat on mat number {i}?", choices=("cat", "big dog", "red bird flew", "tree"),
           label=lab, subject="high_school_biology" if i % 2 else "philosophy")
    for i, lab in enumerate(LABELS)
]
DEV = [Record(id=f"d{i}", question=f"Dev question {i}?", choices=("w", "x", "y", "z"), label=i % 4,
              subject="philosophy") for i in range(5)]


def test_prompt_formats():
    r = RECORDS[0]
    z = build_prompt(r, "zero_shot")
    assert z.startswith("The following are multiple choice questions (with answers) about philosophy.\n\n")
    assert z.endswith("\nA. cat\nB. big dog\nC. red bird flew\nD. tree\nAnswer:")
    assert build_prompt(r, "no_instruction") == z.split("\n\n", 1)[1]
    assert build_prompt(r, "short_answer") == f"Question: {r.question}\nAnswer:"
    few = build_prompt(r, "few_shot", DEV)
    assert few.count("Answer:") == 6 and "Dev question 1?\nA. w\nB. x\nC. y\nD. z\nAnswer: B\n\n" in few
    assert continuations(r, "zero_shot") == [" A", " B", " C", " D"]
    assert continuations(r, "short_answer")[2] == " red bird flew"
    with pytest.raises(ValueError, match="no dev questions"):
        build_prompt(RECORDS[1], "few_shot", DEV)


def test_subject_groups_cover_the_57_subjects():
    assert len(SUBJECT_GROUP) == 57
    assert set(SUBJECT_GROUP.values()) == {"STEM", "humanities", "social sciences", "other"}
    assert SUBJECT_GROUP["abstract_algebra"] == "STEM" and SUBJECT_GROUP["professional_law"] == "humanities"


def test_parse_generation():
    r = RECORDS[0]
    assert parse_generation(" The answer is C.", r, "zero_shot") == 2
    assert parse_generation(" B) big dog", r, "zero_shot") == 1
    assert parse_generation(" a big dog", r, "zero_shot") == 1  # no letter: matched to the option text
    assert parse_generation(" red bird", r, "short_answer") == 2
    assert parse_generation(" nothing useful", r, "short_answer") == -1


def _rigged(model, tokenizer, text=" B"):
    """A copy whose output is a constant distribution peaked on `text`'s token."""
    (token,) = tokenizer(text, add_special_tokens=False)["input_ids"]
    m = copy.deepcopy(model)
    head = torch.nn.Linear(m.lm_head.in_features, m.lm_head.out_features, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[token] = 10.0
    m.lm_head = head
    return m


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
@pytest.mark.parametrize("scoring", ["loglik", "generate"])
def test_a_model_that_always_says_b_scores_the_share_of_b(kind, scoring, tiny_causal, tiny_seq2seq, tiny_tokenizer):
    model = _rigged(tiny_causal if kind == "causal" else tiny_seq2seq, tiny_tokenizer)
    res = evaluate_mmlu(model, tiny_tokenizer, RECORDS, fmt="zero_shot", scoring=scoring, max_new_tokens=3)
    assert res.chosen == [1] * len(RECORDS)
    assert res.accuracy == pytest.approx(LABELS.count(1) / len(LABELS))
    assert res.greedy_proportion == 1.0
    odd = [lab for i, lab in enumerate(LABELS) if i % 2]
    assert res.per_subject["high_school_biology"] == pytest.approx(odd.count(1) / len(odd))
    assert res.per_group["STEM"] == res.per_subject["high_school_biology"]
    assert res.correct == [float(lab == 1) for lab in LABELS]


def test_causal_option_loglik_equals_a_direct_computation(tiny_causal, tiny_tokenizer):
    r = RECORDS[3]
    prompt = build_prompt(r, "short_answer")
    opts = continuations(r, "short_answer")
    got = option_logprobs(tiny_causal, tiny_tokenizer, [prompt], [opts], mean=True, batch_tokens=64, max_length=512)[0]
    ctx = tiny_tokenizer(prompt)["input_ids"]
    for k, o in enumerate(opts):
        cont = tiny_tokenizer(o, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ctx + cont])
        with torch.no_grad():
            lp = tiny_causal(input_ids=x).logits.log_softmax(-1)[0]
        direct = sum(lp[len(ctx) + j - 1, t].item() for j, t in enumerate(cont)) / len(cont)
        assert got[k] == pytest.approx(direct, abs=1e-4)


def test_seq2seq_option_loglik_equals_the_model_loss(tiny_seq2seq, tiny_tokenizer):
    r = RECORDS[2]
    prompt = build_prompt(r, "short_answer")
    opts = continuations(r, "short_answer")
    got = option_logprobs(tiny_seq2seq, tiny_tokenizer, [prompt], [opts], mean=True, batch_tokens=64, max_length=512)[0]
    enc = torch.tensor([tiny_tokenizer(prompt)["input_ids"]])
    for k, o in enumerate(opts):
        labels = torch.tensor([tiny_tokenizer(o, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            loss = tiny_seq2seq(input_ids=enc, labels=labels).loss.item()  # mean NLL per label token
        assert got[k] == pytest.approx(-loss, abs=1e-4)


def test_few_shot_and_short_answer_run_end_to_end(tiny_causal, tiny_tokenizer):
    for fmt in ("few_shot", "short_answer", "no_instruction"):
        res = evaluate_mmlu(tiny_causal, tiny_tokenizer, RECORDS[:1], fmt=fmt, dev_records=DEV, max_new_tokens=4)
        assert len(res.correct) == 1 and 0 <= res.greedy_proportion <= 1


def test_few_shot_greedy_with_shared_shots_equals_model_generate_per_question(tiny_causal, tiny_tokenizer):
    # greedy_generate shares the header + shots of a subject; the answers must be those of
    # plain model.generate on each whole prompt alone.
    from collapselab.metrics.mmlu_scoring import greedy_generate

    dev = DEV + [Record(id=f"b{i}", question=f"Biology dev {i}?", choices=("w", "x", "y", "z"), label=i % 4,
                        subject="high_school_biology") for i in range(3)]
    prompts = [build_prompt(r, "few_shot", dev) for r in RECORDS]
    got = greedy_generate(tiny_causal, tiny_tokenizer, prompts, 5, 4096, 2048)
    for prompt, text in zip(prompts, got, strict=True):
        x = torch.tensor([tiny_tokenizer(prompt)["input_ids"]])
        with torch.no_grad():
            out = tiny_causal.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=5,
                                       pad_token_id=tiny_tokenizer.pad_token_id or tiny_tokenizer.eos_token_id,
                                       eos_token_id=tiny_tokenizer.eos_token_id)
        assert text == tiny_tokenizer.decode(out[0, x.shape[1]:], skip_special_tokens=True)

"""Shared-prefix decoding and per-prompt random streams: outputs never depend on grouping."""

from __future__ import annotations

import pytest

from collapselab.config import DecodingBlock
from collapselab.generation import generate

from .conftest import TEXT, gpt2, llama

QUESTIONS_PER_CONTEXT = (1, 2, 9)


def qa_like(tokenizer) -> tuple[list[list[int]], list[int]]:
    """Contexts of different lengths with 1, 2 and 9 questions each, shuffled, plus two
    prompts that share nothing: like QA prompts laid out as [context] + [question]."""
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    prompts, prefix = [], []
    for c, n_q in enumerate(QUESTIONS_PER_CONTEXT):
        context = ids[40 * c : 40 * c + 20 + 6 * c]
        for q in range(n_q):
            start = 200 + 13 * (c * 9 + q)
            prompts.append(context + ids[start : start + 3 + (q * 5) % 7])
            prefix.append(len(context))
    prompts += [ids[500:517], ids[530:534]]
    prefix += [0, 0]
    order = [(5 * i) % len(prompts) for i in range(len(prompts))]  # 5 is prime to 14: a permutation
    assert sorted(order) == list(range(len(prompts)))
    return [prompts[i] for i in order], [prefix[i] for i in order]


def _gen(model, tok, prompts, decoding, prefix, seed=0):
    return generate(model, tok, prompts, decoding, max_new_tokens=10, seed=seed, prefix_lengths=prefix, progress=False)


@pytest.mark.parametrize("arch", ["llama", "llama-eager", "gpt2"])
def test_shared_prefix_greedy_equals_unshared(tokenizer, arch):
    model = gpt2(tokenizer) if arch == "gpt2" else llama(tokenizer, attn="eager" if arch == "llama-eager" else "sdpa")
    prompts, prefix = qa_like(tokenizer)
    for decoding in (DecodingBlock(method="greedy"), DecodingBlock(method="greedy", repetition_penalty=1.3)):
        unshared = _gen(model, tokenizer, prompts, decoding, None)
        alone = [_gen(model, tokenizer, [p], decoding, None)[0] for p in prompts]
        assert unshared == alone
        assert _gen(model, tokenizer, prompts, decoding, prefix) == unshared
        # A small budget splits the 9-question group over batches: still the same output.
        small = decoding.model_copy(update={"batch_tokens": 150})
        assert _gen(model, tokenizer, prompts, small, prefix) == unshared
    assert len({tuple(o) for o in unshared}) > len(prompts) // 2  # not one output for all


def test_sampling_does_not_depend_on_grouping_or_batching(tokenizer):
    model = llama(tokenizer)
    prompts, prefix = qa_like(tokenizer)
    decoding = DecodingBlock(method="sample", temperature=1.3, top_k=40, top_p=0.95)
    reference = _gen(model, tokenizer, prompts, decoding, None, seed=5)
    assert _gen(model, tokenizer, prompts, decoding, prefix, seed=5) == reference
    small = decoding.model_copy(update={"batch_tokens": 100})
    assert _gen(model, tokenizer, prompts, small, prefix, seed=5) == reference
    # Prompt i's draws are its own: reversing the list (new indices) changes them, but
    # the same prompt at the same index gives the same sample whoever else is in the call.
    sub = [0, 3, 4]
    lone = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=5, progress=False,
                    prefix_lengths=[p if i in sub else 0 for i, p in enumerate(prefix)])
    assert [lone[i] for i in sub] == [reference[i] for i in sub]
    assert _gen(model, tokenizer, prompts, decoding, None, seed=6) != reference


def test_identical_prompts_draw_different_samples(tokenizer):
    # Same prompt, different index: different streams (a batch-level stream would also
    # differ, but a stream per (seed, index) must not repeat itself across rows).
    model = llama(tokenizer)
    prompt = tokenizer(TEXT, add_special_tokens=False)["input_ids"][:9]
    outs = generate(model, tokenizer, [prompt] * 12, DecodingBlock(method="sample", temperature=2.0),
                    max_new_tokens=8, seed=0, prefix_lengths=[6] * 12, progress=False)
    assert len({tuple(o) for o in outs}) > 6


def test_common_prefix_lengths_finds_each_group_once():
    from collapselab.generation import common_prefix_lengths

    shots_a, shots_b = list(range(100, 130)), list(range(200, 220))
    prompts = [shots_a + [1, 2], shots_b + [3], shots_a + [1, 5, 6], shots_a + [7], shots_b + [4, 4], [9] * 40]
    # shots_a's three prompts share 30 tokens (two of them 31: the run takes the common 30).
    assert common_prefix_lengths(prompts) == [30, 20, 30, 30, 20, 0]

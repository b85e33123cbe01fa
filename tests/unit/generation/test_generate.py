"""Batched generation must equal one-at-a-time generation, stop at EOS and be reproducible."""

from __future__ import annotations

import pytest
import torch
from tiny import PEAKED
from tiny import peaked_llama as _llama
from tiny import prompts_of as _prompts

from collapselab.batching import token_budget_batches
from collapselab.config import DecodingBlock
from collapselab.generation import GenerationError, generate, generation_backend


@pytest.mark.parametrize("arch", ["llama", "gpt2", "t5"])
@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_batched_equals_one_at_a_time(tokenizer, arch, method):
    model = PEAKED[arch](tokenizer)
    prompts = _prompts(tokenizer)
    decoding = DecodingBlock(
        method=method, num_beams=3 if method == "beam" else 1, batch_tokens=100_000
    )
    batched = generate(
        model, tokenizer, prompts, decoding, max_new_tokens=12, seed=0, progress=False
    )
    single = [
        generate(model, tokenizer, [p], decoding, max_new_tokens=12, seed=0, progress=False)[0]
        for p in prompts
    ]
    assert batched == single
    assert sum(len(o) for o in batched) > len(prompts)  # not trivially empty


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_small_budget_splits_batches_without_changing_greedy_output(tokenizer, arch):
    model = PEAKED[arch](tokenizer)
    prompts = _prompts(tokenizer)
    big = DecodingBlock(method="greedy", batch_tokens=100_000)
    small = DecodingBlock(method="greedy", batch_tokens=64)  # ~2 prompts per batch
    a = generate(model, tokenizer, prompts, big, max_new_tokens=10, seed=0, progress=False)
    b = generate(model, tokenizer, prompts, small, max_new_tokens=10, seed=0, progress=False)
    assert a == b


def test_greedy_matches_unpadded_reference(tokenizer):
    # The prompt alone through model.generate, no padding anywhere: what our output must be.
    model = _llama(tokenizer)
    prompt = _prompts(tokenizer)[3]
    with torch.no_grad():
        ref = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=12,
            min_new_tokens=12,
            top_k=None,
            eos_token_id=None,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(prompt) :].tolist()
    ours = generate(
        model,
        tokenizer,
        [prompt, [5, 6]],
        DecodingBlock(method="greedy"),
        max_new_tokens=12,
        seed=0,
        progress=False,
    )[0]
    cut = ref[: ref.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ref else ref
    assert ours == cut


def test_stops_at_eos(tokenizer):
    model = _llama(tokenizer)
    eos = tokenizer.eos_token_id
    # EOS is the overwhelming choice at every step: every continuation is empty.
    handle = model.register_forward_hook(lambda m, i, o: o.logits.__setitem__((..., eos), 1e4) or o)
    try:
        out = generate(
            model,
            tokenizer,
            _prompts(tokenizer),
            DecodingBlock(method="greedy"),
            max_new_tokens=8,
            seed=0,
            progress=False,
        )
    finally:
        handle.remove()
    assert out == [[] for _ in out]


def test_eos_cut_keeps_tokens_before_eos(tokenizer):
    model = _llama(tokenizer)
    eos = tokenizer.eos_token_id
    calls = {"n": 0}

    def force_eos_on_third_step(module, inputs, output):
        calls["n"] += 1
        if calls["n"] == 3:  # prefill, step 2, step 3 -> the third new token is EOS
            output.logits[..., eos] = 1e4
        return output

    handle = model.register_forward_hook(force_eos_on_third_step)
    try:
        out = generate(
            model,
            tokenizer,
            [[5, 6, 7]],
            DecodingBlock(method="greedy"),
            max_new_tokens=8,
            seed=0,
            progress=False,
        )
    finally:
        handle.remove()
    assert len(out[0]) == 2 and eos not in out[0]


def test_rows_finishing_early_leave_the_others_unchanged(tokenizer):
    # EOS is forced after any token divisible by 5: a rule of each sequence's own history,
    # so rows finish at different steps (and get dropped from the batch) while the others
    # must continue exactly as they would alone.
    model = _llama(tokenizer)
    eos = tokenizer.eos_token_id

    def eos_after_multiples_of_five(module, args, kwargs, output):
        last = kwargs["input_ids"][:, -1]
        output.logits[last % 5 == 0, -1, eos] = 1e4
        return output

    handle = model.register_forward_hook(eos_after_multiples_of_five, with_kwargs=True)
    prompts = _prompts(tokenizer, 9)
    decoding = DecodingBlock(method="greedy", repetition_penalty=1.3)
    try:
        batched = generate(
            model, tokenizer, prompts, decoding, max_new_tokens=16, seed=0, progress=False
        )
        single = [
            generate(model, tokenizer, [p], decoding, max_new_tokens=16, seed=0, progress=False)[0]
            for p in prompts
        ]
    finally:
        handle.remove()
    assert batched == single
    lengths = sorted(len(o) for o in batched)
    assert (
        lengths[0] < 16 and lengths[-1] > lengths[0]
    )  # some rows did stop early, at different steps


def test_repetition_penalty_matches_transformers(tokenizer):
    model = _llama(tokenizer)
    prompts = _prompts(tokenizer)
    decoding = DecodingBlock(method="greedy", repetition_penalty=1.5)
    ours = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=0, progress=False)
    for prompt, out in zip(prompts, ours, strict=True):
        with torch.no_grad():
            ref = model.generate(
                torch.tensor([prompt]),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                do_sample=False,
                repetition_penalty=1.5,
                max_new_tokens=10,
                top_k=None,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )[0, len(prompt) :].tolist()
        assert out == (
            ref[: ref.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in ref else ref
        )


def test_lora_wrapped_model_generates_like_its_base(tokenizer):
    from peft import LoraConfig, get_peft_model

    base = _llama(tokenizer)
    prompts = _prompts(tokenizer)
    decoding = DecodingBlock(method="greedy")
    expected = generate(
        base, tokenizer, prompts, decoding, max_new_tokens=8, seed=0, progress=False
    )
    # Fresh adapters start with lora_B = 0: the wrapped model computes the base model's function.
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    got = generate(lora, tokenizer, prompts, decoding, max_new_tokens=8, seed=0, progress=False)
    assert got == expected


def test_sampling_is_deterministic_given_seed(tokenizer):
    model = _llama(tokenizer)
    prompts = _prompts(tokenizer)
    decoding = DecodingBlock(
        method="sample", temperature=1.5, top_p=0.95, top_k=50, repetition_penalty=1.2
    )
    a = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=3, progress=False)
    torch.manual_seed(12345)  # the caller's global RNG state must not matter
    b = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=3, progress=False)
    c = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=4, progress=False)
    assert a == b
    assert a != c


def test_length_batches_respects_budget_and_sorts():
    lengths = [5, 50, 3, 20, 20, 7]
    batches = token_budget_batches(lengths, budget=100, extra=10)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * (max(lengths[i] for i in b) + 10) <= 100
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)


def test_backend_is_transformers_without_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert generation_backend(DecodingBlock()) == "transformers"
    with pytest.raises(GenerationError, match="vllm"):
        generation_backend(DecodingBlock(backend="vllm"))


def test_seq2seq_sampling_draws_from_per_prompt_streams(tokenizer):
    # model.generate samples here; each prompt's stream still decides, not the batch's.
    model = PEAKED["t5"](tokenizer)
    prompts = _prompts(tokenizer)
    big = DecodingBlock(method="sample", temperature=1.5, top_k=20, batch_tokens=100_000)
    small = big.model_copy(update={"batch_tokens": 64})
    a = generate(model, tokenizer, prompts, big, max_new_tokens=8, seed=1, progress=False)
    b = generate(model, tokenizer, prompts, small, max_new_tokens=8, seed=1, progress=False)
    c = generate(model, tokenizer, prompts, big, max_new_tokens=8, seed=2, progress=False)
    assert a == b != c


def test_a_forward_that_ignores_the_cache_argument_fails_loudly(tokenizer):
    # transformers before 5.24 (or a model class of its own) takes `cache=` into **kwargs and
    # decodes without it: each step would attend to its own token alone, a silent wrong output.
    model = _llama(tokenizer)
    forward = model.forward
    model.forward = lambda *args, cache=None, **kwargs: forward(*args, **kwargs)
    decoding = DecodingBlock(method="greedy", batch_tokens=100_000)
    with pytest.raises(GenerationError, match="did not fill the `cache`"):
        generate(model, tokenizer, _prompts(tokenizer)[:2], decoding, max_new_tokens=4, seed=0, progress=False)

"""Shared-prefix decoding and per-prompt random streams: outputs never depend on grouping."""

from __future__ import annotations

import pytest
import torch
from tiny import BPE_TEXT, peaked_gpt2, peaked_llama

from collapselab.config import DecodingBlock
from collapselab.generation import cascade, causal, generate

QUESTIONS_PER_CONTEXT = (1, 2, 9)


def qa_like(tokenizer) -> tuple[list[list[int]], list[int]]:
    """Contexts of different lengths with 1, 2 and 9 questions each, shuffled, plus two
    prompts that share nothing: like QA prompts laid out as [context] + [question]."""
    ids = tokenizer(BPE_TEXT, add_special_tokens=False)["input_ids"]
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


def _model(tokenizer, arch: str):
    if arch == "gpt2":
        return peaked_gpt2(tokenizer)
    return peaked_llama(tokenizer, attn="eager" if arch == "llama-eager" else "sdpa", kv_heads=2 if arch == "llama-gqa" else 4)


@pytest.mark.parametrize("arch", ["llama", "llama-gqa", "llama-eager", "gpt2"])
def test_shared_prefix_greedy_equals_unshared(tokenizer, arch, monkeypatch):
    monkeypatch.setattr(causal, "PREFILL_CHUNK_TOKENS", 40)  # contexts and questions prefilled in several chunks
    model = _model(tokenizer, arch)
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


@pytest.mark.parametrize(("arch", "split"), [("llama", True), ("llama-gqa", True), ("gpt2", True), ("llama-eager", False)])
def test_shared_prefixes_are_read_once_per_group_where_attention_allows(tokenizer, arch, split, monkeypatch):
    # With SDPA on a CPU the rows' caches leave the prefix out and attention reads it once
    # per group; eager attention (additive masks built by the model) keeps per-row copies.
    seen = []
    merge = cascade.SharedPrefix.merge
    monkeypatch.setattr(cascade.SharedPrefix, "merge", lambda self, *a: seen.append(len(self.keys[0])) or merge(self, *a))
    model = _model(tokenizer, arch)
    prompts, prefix = qa_like(tokenizer)
    _gen(model, tokenizer, prompts, DecodingBlock(method="greedy"), prefix)
    assert bool(seen) == split
    if split:  # one key row per context, a lone question's context as a group of one
        assert set(seen) == {len(QUESTIONS_PER_CONTEXT)}
    assert model.config._attn_implementation == ("eager" if arch == "llama-eager" else "sdpa")


@pytest.mark.parametrize("one_call", [True, False], ids=["one-call", "call-per-group"])
@pytest.mark.parametrize(("q_len", "kv_heads"), [(1, 2), (1, 4), (5, 2), (5, 4)])
def test_split_attention_equals_attention_over_prefix_and_own_keys(q_len, kv_heads, one_call, monkeypatch):
    # Free calls make each group its own flash call; costly ones, one block for all groups.
    monkeypatch.setattr(cascade, "CALL_QUERIES", 10**6 if one_call else 0)
    torch.manual_seed(0)
    b, h, d, p_len, own_len = 6, 4, 8, 7, 9
    group = torch.tensor([1, 0, -1, 1, 1, 0])  # row 2 reads no prefix
    prefix_ok = torch.ones(2, p_len, dtype=torch.bool)
    prefix_ok[0, :3] = False  # a shorter, left-padded prefix
    own_ok = torch.ones(b, own_len, dtype=torch.bool)
    own_ok[4, :2] = False
    pk, pv = torch.randn(2, kv_heads, p_len, d), torch.randn(2, kv_heads, p_len, d)
    k, v = torch.randn(b, kv_heads, own_len, d), torch.randn(b, kv_heads, own_len, d)
    query = torch.randn(b, h, q_len, d)
    own_mask = own_ok[:, None, None, :].expand(b, 1, q_len, own_len).clone()
    own_mask[:, :, :, own_len - q_len :] &= torch.ones(q_len, q_len, dtype=torch.bool).tril()  # causal over the new queries

    cache = type("C", (), {"layers": [type("L", (), {"keys": pk, "values": pv})()]})()
    shared = cascade.SharedPrefix(cache, prefix_ok, group)
    additive = torch.zeros(own_mask.shape).masked_fill_(~own_mask, torch.finfo(torch.float32).min)
    module = type("M", (), {"layer_idx": 0})()
    got, _ = cascade.shared_prefix_attention(module, query, k, v, additive, scaling=0.3, shared_prefix=shared)

    rows = torch.where(group >= 0, group, 0)
    full_k = torch.cat([pk[rows], k], 2).repeat_interleave(h // kv_heads, 1)
    full_v = torch.cat([pv[rows], v], 2).repeat_interleave(h // kv_heads, 1)
    pre_mask = (prefix_ok[rows] & (group >= 0)[:, None])[:, None, None, :].expand(b, 1, q_len, p_len)
    want = torch.nn.functional.scaled_dot_product_attention(
        query, full_k, full_v, attn_mask=torch.cat([pre_mask, own_mask], -1), scale=0.3
    ).transpose(1, 2)
    assert torch.allclose(got, want, atol=1e-6)
    shared.keep(torch.tensor([0, 2, 5]))  # rows leave: the rest still read their own prefix
    got, _ = cascade.shared_prefix_attention(module, query[[0, 2, 5]], k[[0, 2, 5]], v[[0, 2, 5]], additive[[0, 2, 5]],
                                             scaling=0.3, shared_prefix=shared)
    assert torch.allclose(got, want[[0, 2, 5]], atol=1e-6)


def test_prefix_runs_are_the_cheapest_partition_of_the_groups():
    import itertools

    def cost(parts, counts, per_row):
        return sum((e - s) * (max(counts[s:e]) * per_row + cascade.GROUP_QUERIES) + cascade.CALL_QUERIES for s, e in parts)

    def brute(counts, per_row):  # every way to cut the groups into runs; runs of empty groups need no call
        n, best = len(counts), None
        for cuts in itertools.product([False, True], repeat=n - 1):
            parts, start = [], 0
            for i, c in enumerate(cuts, 1):
                if c:
                    parts.append((start, i))
                    start = i
            parts.append((start, n))
            parts = [(s, e) for s, e in parts if max(counts[s:e]) > 0]
            c = cost(parts, counts, per_row)
            best = c if best is None else min(best, c)
        return best

    rng = torch.Generator().manual_seed(0)
    for _ in range(60):
        n = int(torch.randint(1, 7, (1,), generator=rng))
        counts = torch.randint(0, 12, (n,), generator=rng).tolist()
        per_row = int(torch.randint(1, 40, (1,), generator=rng))
        got = cascade.runs(counts, per_row)
        covered = [g for s, e, _ in got for g in range(s, e)]
        assert len(covered) == len(set(covered))  # no group twice
        assert {g for g, c in enumerate(counts) if c} <= set(covered)  # every group with rows
        assert all(w == max(counts[s:e]) for s, e, w in got)
        assert cost([(s, e) for s, e, _ in got], counts, per_row) == brute(counts, per_row)
    # One nine-row group and many single rows: two calls, not one nine-row-wide block.
    assert [w for _, _, w in cascade.runs([9] + [1] * 30, 30)] == [9, 1]


def test_sampling_does_not_depend_on_grouping_or_batching(tokenizer):
    model = peaked_llama(tokenizer)
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
    model = peaked_llama(tokenizer)
    prompt = tokenizer(BPE_TEXT, add_special_tokens=False)["input_ids"][:9]
    outs = generate(model, tokenizer, [prompt] * 12, DecodingBlock(method="sample", temperature=2.0),
                    max_new_tokens=8, seed=0, prefix_lengths=[6] * 12, progress=False)
    assert len({tuple(o) for o in outs}) > 6


def test_common_prefix_lengths_finds_each_group_once():
    from collapselab.generation import common_prefix_lengths

    shots_a, shots_b = list(range(100, 130)), list(range(200, 220))
    prompts = [shots_a + [1, 2], shots_b + [3], shots_a + [1, 5, 6], shots_a + [7], shots_b + [4, 4], [9] * 40]
    # shots_a's three prompts share 30 tokens (two of them 31: the run takes the common 30).
    assert common_prefix_lengths(prompts) == [30, 20, 30, 30, 20, 0]


def test_split_plan_counts_a_prefix_once_per_batch():
    # 3 contexts of 100 tokens x 10 questions of 5 tokens, 10 new tokens each. Copies cost a
    # row 115 tokens (8 rows per 1000); split, a batch costs rows x 15 + groups x 100.
    prompts = [[c + 3] * 100 + [q + 20] * 5 for c in range(3) for q in range(10)]
    eff = [100] * len(prompts)
    copies = causal.plan_batches(prompts, eff, 1000, 10)
    split = causal.plan_batches(prompts, eff, 1000, 10, split=True)
    assert [len(b) for b in copies] == [8, 8, 8, 6]
    assert [sorted(b) for b in split] == [list(range(30))]
    # At 600: two groups fit (20 x 15 + 2 x 100 = 500); a row of the third costs 615.
    assert [len(b) for b in causal.plan_batches(prompts, eff, 600, 10, split=True)] == [20, 10]

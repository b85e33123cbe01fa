"""Gemma 3: sliding-window layers decode in the preallocated cache exactly as transformers does."""

from __future__ import annotations

import pytest
import torch
from tiny import BPE_TEXT, peaked
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from collapselab.config import DecodingBlock
from collapselab.generation import generate

WINDOW = 6


def gemma3(tokenizer, attn: str) -> torch.nn.Module:
    cfg = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        query_pre_attn_scalar=8,
        sliding_window=WINDOW,  # far shorter than prompt + new tokens: the window matters
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return peaked(Gemma3ForCausalLM._from_config(cfg, attn_implementation=attn), seed=0)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_gemma3_sliding_window_matches_transformers(tokenizer, attn):
    model = gemma3(tokenizer, attn)
    ids = tokenizer(BPE_TEXT, add_special_tokens=False)["input_ids"]
    context = ids[:11]
    prompts = [context + ids[40 + 7 * q : 43 + 7 * q + q] for q in range(4)] + [ids[90:93], ids[120:135]]
    prefix = [len(context)] * 4 + [0, 0]
    reference = []
    for p in prompts:  # transformers alone: its own sliding-window cache and masks, no padding
        with torch.no_grad():
            out = model.generate(torch.tensor([p]), attention_mask=torch.ones(1, len(p), dtype=torch.long),
                                 do_sample=False, max_new_tokens=12, top_k=None, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.pad_token_id)[0, len(p):].tolist()
        reference.append(out[: out.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in out else out)
    greedy = DecodingBlock(method="greedy")
    ours = generate(model, tokenizer, prompts, greedy, max_new_tokens=12, seed=0, progress=False)
    shared = generate(model, tokenizer, prompts, greedy, max_new_tokens=12, seed=0, prefix_lengths=prefix,
                      progress=False)
    assert ours == reference
    assert shared == reference
    assert max(len(p) + len(o) for p, o in zip(prompts, ours, strict=True)) > 2 * WINDOW

"""Tiny random models and data the training tests share (no files, no downloads)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

VOCAB, PAD, EOS = 64, 0, 1


def llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=PAD,
        eos_token_id=EOS,
        bos_token_id=None,
    )
    return LlamaForCausalLM._from_config(cfg, attn_implementation="sdpa")


def t5() -> T5ForConditionalGeneration:
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=4,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=PAD,
        dropout_rate=0.0,
    )
    return T5ForConditionalGeneration(cfg)


def docs(n: int = 24) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    # A tiny repeated corpus: a few patterns of mixed lengths, easy to memorise.
    patterns = [list(range(2 + k, 2 + k + 5 + 3 * k)) for k in range(4)]
    return [patterns[int(torch.randint(0, 4, (1,), generator=g))] for _ in range(n)]


def pairs(n: int = 16) -> list[tuple[list[int], list[int]]]:
    g = torch.Generator().manual_seed(2)
    out = []
    for _ in range(n):
        p = torch.randint(
            2, VOCAB, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g
        ).tolist()
        t = [(x * 7) % (VOCAB - 2) + 2 for x in p[:3]] + [EOS]  # a learnable function of the prompt
        out.append((p, t))
    return out

"""Tiny random models and a tokenizer trained on the fly (no files, no downloads; built by
tests/tiny.py) over a corpus of the words and MMLU answer letters the metrics see."""

from __future__ import annotations

import random

import pytest
from tiny import bpe_tokenizer, llama, t5

WORDS = ("the a cat dog bird sat ran flew on under over mat tree house red big small quickly slowly "
         "question answer which of following is true false statement about A B C D").split()


def _corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 15))) + ".")
    # Letters after "Answer:" as in the MMLU prompts, so " A".." D" are single tokens.
    out += [f"Answer: {x}\n{x}. option" for x in "ABCD"] * 20
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return bpe_tokenizer(_corpus(), 400, ["<eos>", "<pad>"], full_alphabet=True)


@pytest.fixture(scope="session")
def tiny_causal(tiny_tokenizer):
    return llama(len(tiny_tokenizer), num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                 tie_word_embeddings=False, eos_token_id=tiny_tokenizer.eos_token_id, pad_token_id=tiny_tokenizer.pad_token_id).eval()


@pytest.fixture(scope="session")
def tiny_seq2seq(tiny_tokenizer):
    ids = {"eos_token_id": tiny_tokenizer.eos_token_id, "pad_token_id": tiny_tokenizer.pad_token_id}
    return t5(len(tiny_tokenizer), d_kv=16, num_heads=2, dropout_rate=0.1, decoder_start_token_id=ids["pad_token_id"], **ids).eval()

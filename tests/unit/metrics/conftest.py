"""Tiny random models and a tokenizer trained on the fly (no files, no downloads)."""

from __future__ import annotations

import random

import pytest

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
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<eos>", "<pad>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_causal(tiny_tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                      eos_token_id=tiny_tokenizer.eos_token_id, pad_token_id=tiny_tokenizer.pad_token_id)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture(scope="session")
def tiny_seq2seq(tiny_tokenizer):
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(0)
    cfg = T5Config(vocab_size=len(tiny_tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=1, num_decoder_layers=1,
                   num_heads=2, eos_token_id=tiny_tokenizer.eos_token_id, pad_token_id=tiny_tokenizer.pad_token_id,
                   decoder_start_token_id=tiny_tokenizer.pad_token_id)
    return T5ForConditionalGeneration(cfg).eval()

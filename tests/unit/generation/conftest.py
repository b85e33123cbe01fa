"""Tiny models and prompts for the generation tests: a BPE trained on the fly, random weights."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

from collapselab.models import kernels

TEXT = (
    "the cat sat on the mat and the dog sat on the log. "
    "a model trained on its own output slowly forgets the tails of the distribution. "
    "every generation of data is a little less diverse than the one before it. "
) * 20


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<pad>", "<eos>"], show_progress=False
    )
    tok.train_from_iterator([TEXT], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def init_weights(model: torch.nn.Module) -> torch.nn.Module:
    # A larger init than the default makes the random model's logits peaked, so greedy and
    # beam choices are not decided by float rounding between near-equal logits.
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model.eval()


def llama(tokenizer, attn: str = "sdpa", kv_heads: int = 4) -> torch.nn.Module:
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        intermediate_size=64,
        max_position_embeddings=128,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    return kernels.install(init_weights(LlamaForCausalLM._from_config(cfg, attn_implementation=attn)))


def gpt2(tokenizer) -> torch.nn.Module:
    cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=128,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    return init_weights(GPT2LMHeadModel(cfg))


def t5(tokenizer) -> torch.nn.Module:
    cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
        dropout_rate=0.0,
    )
    return init_weights(T5ForConditionalGeneration(cfg))


MODELS = {"llama": llama, "gpt2": gpt2, "t5": t5}


def prompts_of(tokenizer, n: int = 7) -> list[list[int]]:
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    lengths = [3, 11, 5, 17, 1, 8, 13, 2, 9][:n]  # mixed lengths, unsorted, a 1-token prompt
    return [ids[7 * k : 7 * k + n_] for k, n_ in enumerate(lengths)]



"""Beam search and seq2seq models: transformers' model.generate, batched by the same budget.

Sampling here still draws from each prompt's own stream: a last logits processor picks the
token with the prompt's uniform and leaves only that token possible, so model.generate's
own multinomial draw has nothing left to choose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from collapselab.generation.sampling import PromptSampling, draw, warpers
from collapselab.generation.streams import uniforms

if TYPE_CHECKING:
    from collapselab.config import DecodingBlock


def generation_config(model: Any, tokenizer: Any, decoding: DecodingBlock, max_new_tokens: int) -> Any:
    """A GenerationConfig with every knob set: a pretrained model's generation_config.json
    (e.g. BART's no_repeat_ngram_size=3, num_beams=4) must not leak into the experiment.
    Sampling warpers are not in it: `hf_generate` applies them itself, per prompt stream."""
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        do_sample=decoding.method == "sample",
        num_beams=decoding.num_beams if decoding.method == "beam" else 1,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        repetition_penalty=decoding.repetition_penalty,
        no_repeat_ngram_size=0,
        length_penalty=1.0,
        early_stopping=False,
        num_return_sequences=1,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=model.config.decoder_start_token_id if model.config.is_encoder_decoder else None,
        use_cache=True,
    )


class _StreamSampler:
    """A logits processor that samples each row from its prompt's stream (last in the list)."""

    def __init__(self, decoding: DecodingBlock, keys: np.ndarray, start: int):
        setting = PromptSampling(
            method="sample", temperature=decoding.temperature, top_p=decoding.top_p, top_k=decoding.top_k
        )
        self.warp, self.keys, self.start = warpers(setting), keys, start

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.start
        token = draw(self.warp(input_ids, scores.float()), uniforms(self.keys, step))
        only = torch.full_like(scores, float("-inf"))
        only[torch.arange(len(token)), token] = 0.0
        return only


def hf_generate(
    model: Any, batch: Sequence[Sequence[int]], gen_config: Any, decoding: DecodingBlock, keys: np.ndarray
) -> list[list[int]]:
    """model.generate on one batch: causal prompts left-padded, encoder inputs right-padded."""
    from transformers import LogitsProcessorList

    encoder_decoder = bool(model.config.is_encoder_decoder)
    width = max(len(p) for p in batch)
    input_ids = torch.full((len(batch), width), gen_config.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, p in enumerate(batch):
        span = slice(0, len(p)) if encoder_decoder else slice(width - len(p), width)
        input_ids[row, span] = torch.tensor(p, dtype=torch.long)
        attention_mask[row, span] = 1
    procs = LogitsProcessorList()
    if decoding.method == "sample":
        procs.append(_StreamSampler(decoding, keys, start=1 if encoder_decoder else width))
    out = model.generate(
        input_ids=input_ids.to(model.device),
        attention_mask=attention_mask.to(model.device),
        generation_config=gen_config,
        logits_processor=procs,
    )
    new = out[:, 1:] if encoder_decoder else out[:, width:]  # drop decoder start / prompt
    return new.tolist()

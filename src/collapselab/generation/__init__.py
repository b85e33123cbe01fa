"""Batched generation: the cost centre of every generation of a collapse experiment.

One entry point, `generate`, continues token-id prompts with a causal or seq2seq model.
Prompts are sorted by length (and by shared prefix) and cut into batches by a token budget
(prompt + new tokens, times beams), so similar lengths share a batch and a long prompt never
runs out of memory; outputs come back in the input order.

- Causal greedy and sampling go through the own decode loop (`causal.py`): left padding, a
  preallocated KV cache, shared prefixes prefilled once, per-prompt settings, streaming.
- Beam search and seq2seq models go through `model.generate` (`hf.py`), batched the same way.
- vLLM is used when installed and a GPU is present (`vllm.py`), one engine per model.

Every prompt draws from its own random stream (`streams.py`): prompt i's samples depend only
on (seed, i) and its own prompt, never on batching, sorting or prefix grouping.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch

from collapselab import textio
from collapselab.batching import token_budget_batches
from collapselab.generation.causal import (
    LogprobListener,
    TokenListener,
    common_prefix_lengths,
    decode_batch,
    plan_batches,
    shared_prefix_lengths,
    splits_prefix_attention,
)
from collapselab.generation.hf import generation_config, hf_generate
from collapselab.generation.sampling import GenerationError, PromptSampling
from collapselab.generation.streams import prompt_keys
from collapselab.generation.vllm import generate_vllm
from collapselab.models import kernels

if TYPE_CHECKING:
    from collapselab.config import DecodingBlock

__all__ = [
    "GenerationError",
    "LogprobListener",
    "PromptSampling",
    "TokenListener",
    "common_prefix_lengths",
    "continuation_text",
    "generate",
    "generation_backend",
]


def generation_backend(decoding: DecodingBlock) -> str:
    """The backend `generate` uses for these decoding settings: "transformers" or "vllm".

    vLLM needs the package and a CUDA GPU; "auto" picks it when both are there. Asking for
    "vllm" without them is an error, not a silent fallback.
    """
    vllm_ok = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if decoding.backend == "vllm" and not vllm_ok:
        raise GenerationError("decoding.backend: 'vllm' needs the vllm package and a CUDA GPU")
    # vLLM's beam search takes no repetition penalty: the same config must mean the same
    # experiment on either backend, so such beams go through transformers.
    if decoding.method == "beam" and decoding.repetition_penalty != 1.0:
        if decoding.backend == "vllm":
            raise GenerationError("decoding.backend: vLLM beam search has no repetition_penalty; use backend auto or transformers")
        return "transformers"
    if decoding.backend == "transformers":
        return "transformers"
    return "vllm" if vllm_ok else "transformers"


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    decoding: DecodingBlock,
    *,
    max_new_tokens: int,
    seed: int,
    prefix_lengths: Sequence[int] | None = None,
    sampling: Sequence[PromptSampling] | None = None,
    on_tokens: TokenListener | None = None,
    on_logprobs: LogprobListener | None = None,
    desc: str = "generate",
    progress: bool = True,
) -> list[list[int]]:
    """Continue each prompt and return the new token ids, in the input order.

    Args:
        model: A transformers causal LM or seq2seq model (`model.config.is_encoder_decoder`).
        tokenizer: Its tokenizer; `eos_token_id` must be set, and `pad_token_id` for beam
            search and seq2seq models (the own loop pads with the prompt's own tokens).
        prompts: Token ids per prompt, no special tokens added. Causal: the text to continue;
            seq2seq: the encoder input.
        decoding: Method (sample, greedy, beam), its settings and the batch token budget.
        max_new_tokens: Most new tokens per prompt.
        seed: Sampling seed. Prompt i draws from its own stream, a function of (seed, i)
            only: its output does not depend on the other prompts, the batching or grouping.
        prefix_lengths: Per prompt, how many of its leading tokens it may share with other
            prompts (e.g. instruction + context, before the question). Prompts whose first
            `prefix_lengths[i]` ids are equal form a group; each group's prefix KV cache is
            computed once per batch and each prompt prefills only the rest. Output equals
            unshared decoding (greedy token for token; sampling draw for draw). 0 or None:
            nothing shared. Causal models on the own loop use it; vLLM shares prefixes by
            itself (prefix caching); beam search and seq2seq ignore it.
        sampling: Per prompt, its own method, temperature, top-p, top-k and
            max_new_tokens (`PromptSampling`), replacing those of `decoding` for that prompt,
            so requests with different settings decode in one batch. Not with beam search.
        on_tokens: Streaming hook, `on_tokens(prompt_index, new_token_ids, finished)`,
            called after every decode step for every prompt still running, with the token
            it produced (an empty list for EOS); `finished` is True on its last call
            (EOS or its max_new_tokens). Returning True stops that prompt at once: its
            output is what it produced so far, and it gets no more calls. Own loop only;
            on vLLM it is called once per prompt, at the end, with all its tokens.
        on_logprobs: `on_logprobs(prompt_index, token_id, logprob, top)` for every new token
            (not EOS) of a prompt whose `sampling` setting has `logprobs` k: the token's
            log-probability under the model's own distribution (log-softmax of its logits,
            before penalties, temperature, top-k and top-p) and the k most likely tokens'
            (token_id, logprob), most likely first; called before `on_tokens` hears of the
            token. Own loop only.
        desc: Progress bar label.
        progress: Show a progress bar on stderr.

    Returns:
        Per prompt, the new token ids only, cut before the first EOS.
    """
    encoder_decoder = bool(model.config.is_encoder_decoder)
    needs_pad = encoder_decoder or decoding.method == "beam"
    if tokenizer.eos_token_id is None or (needs_pad and tokenizer.pad_token_id is None):
        raise GenerationError("generate: tokenizer needs eos_token_id (and pad_token_id for beam search and seq2seq)")
    if any(len(p) == 0 for p in prompts) and not encoder_decoder:
        raise GenerationError("generate: causal prompts must be non-empty")
    for name, per in (("prefix_lengths", prefix_lengths), ("sampling", sampling)):
        if per is not None and len(per) != len(prompts):
            raise GenerationError(f"generate: {name} has {len(per)} entries for {len(prompts)} prompts")
    if sampling is not None and decoding.method == "beam":
        raise GenerationError("generate: per-prompt sampling settings do not apply to beam search")
    if not prompts:
        return []
    settings = list(sampling) if sampling is not None else [_call_setting(decoding)] * len(prompts)
    backend = generation_backend(decoding)
    if backend == "vllm" and on_logprobs is not None:
        raise GenerationError("generate: on_logprobs needs the own decode loop (decoding.backend transformers)")
    if backend == "vllm":
        outs = generate_vllm(model, tokenizer, prompts, decoding, settings, max_new_tokens=max_new_tokens, seed=seed)
        for i, o in enumerate(outs) if on_tokens is not None else ():
            on_tokens(i, o, True)
        return outs
    if not {"OMP_NUM_THREADS", "MKL_NUM_THREADS"} & os.environ.keys():
        torch.set_num_threads(os.cpu_count() or 1)
    own_loop = not encoder_decoder and decoding.method != "beam"
    if not own_loop and (on_tokens is not None or on_logprobs is not None or sampling is not None):
        raise GenerationError("generate: sampling, on_tokens and on_logprobs need a causal model with method sample or greedy")
    kernels.install(model)
    bar = textio.progress(len(prompts), desc, "prompt", show=progress)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if own_loop:
                return _own_loop(model, tokenizer, prompts, decoding, settings, max_new_tokens, seed, prefix_lengths, on_tokens,
                                 on_logprobs, bar)
            return _hf_loop(model, tokenizer, prompts, decoding, max_new_tokens, seed, bar)
    finally:
        bar.close()
        model.train(was_training)


def continuation_text(tokenizer: Any, ids: Sequence[int]) -> str:
    """The text of a continuation `generate` returned, as the model wrote it.

    `generate` cuts each output before its EOS; any other special token the model wrote stays
    in the text (`skip_special_tokens=False`), so the text is what the model wrote, and it
    tokenizes back to the same ids when a later generation trains on it (skipping them would
    silently filter the model's output). A continuation cut at max_new_tokens may end inside a
    multi-byte character: its trailing U+FFFD is dropped.
    """
    return tokenizer.decode(list(ids), skip_special_tokens=False).removesuffix("\ufffd")


def _call_setting(decoding: DecodingBlock) -> PromptSampling:
    if decoding.method == "greedy":
        return PromptSampling(method="greedy")
    return PromptSampling(temperature=decoding.temperature, top_p=decoding.top_p, top_k=decoding.top_k)


def _own_loop(model, tokenizer, prompts, decoding, settings, max_new_tokens, seed, prefix_lengths, on_tokens, on_logprobs,
              bar) -> list[list[int]]:
    split = prefix_lengths is not None and any(prefix_lengths) and splits_prefix_attention(model)
    eff = shared_prefix_lengths(prompts, prefix_lengths, split) if prefix_lengths is not None else [0] * len(prompts)
    split = split and any(eff)
    longest = max(s.max_new_tokens or max_new_tokens for s in settings)
    outputs: list[list[int]] = [[] for _ in prompts]
    for idx in plan_batches(prompts, eff, decoding.batch_tokens, longest, split):
        new = decode_batch(
            model,
            [prompts[i] for i in idx],
            [eff[i] for i in idx],
            [settings[i] for i in idx],
            prompt_keys(seed, idx),
            eos_id=tokenizer.eos_token_id,
            repetition_penalty=decoding.repetition_penalty,
            max_new_tokens=max_new_tokens,
            indices=idx,
            on_tokens=on_tokens,
            on_logprobs=on_logprobs,
        )
        for i, ids in zip(idx, new, strict=True):
            outputs[i] = ids
        bar.update(len(idx))
    return outputs


def _hf_loop(model, tokenizer, prompts, decoding, max_new_tokens, seed, bar) -> list[list[int]]:
    gen_config = generation_config(model, tokenizer, decoding, max_new_tokens)
    # Seq2seq: the budget holds the encoder input plus a decoder of max_new_tokens.
    batches = token_budget_batches(
        [len(p) for p in prompts], decoding.batch_tokens, extra=max_new_tokens, copies=gen_config.num_beams
    )
    outputs: list[list[int]] = [[] for _ in prompts]
    eos_id = tokenizer.eos_token_id
    for idx in batches:
        new = hf_generate(model, [prompts[i] for i in idx], gen_config, decoding, prompt_keys(seed, idx))
        for i, ids in zip(idx, new, strict=True):
            outputs[i] = ids[: ids.index(eos_id)] if eos_id in ids else ids
        bar.update(len(idx))
    return outputs

"""Batched generation: the cost centre of every generation of a collapse experiment.

One entry point, `generate`, continues token-id prompts with a causal or seq2seq model.
Prompts are sorted by length and cut into batches by a token budget (prompt + new tokens,
times beams), so similar lengths share a batch and a long prompt never runs out of memory;
outputs come back in the input order. The transformers backend left-pads causal prompts
(attention mask 0 on pads; transformers derives position ids from the mask) and decodes
with the KV cache under `torch.inference_mode`. vLLM is used when installed and a GPU is
present.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm
from transformers.cache_utils import DynamicLayer

from collapselab.batching import token_budget_batches
from collapselab.config import DecodingBlock


def generation_backend(decoding: DecodingBlock) -> str:
    """The backend `generate` uses for these decoding settings: "transformers" or "vllm".

    vLLM needs the package and a CUDA GPU; "auto" picks it when both are there. Asking for
    "vllm" without them is an error, not a silent fallback.
    """
    vllm_ok = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if decoding.backend == "vllm" and not vllm_ok:
        raise RuntimeError("decoding.backend: 'vllm' needs the vllm package and a CUDA GPU")
    # vLLM's beam search takes no repetition penalty: the same config must mean the same
    # experiment on either backend, so such beams go through transformers.
    beam_with_penalty = decoding.method == "beam" and decoding.repetition_penalty != 1.0
    if beam_with_penalty:
        if decoding.backend == "vllm":
            raise RuntimeError("decoding.backend: vLLM beam search has no repetition_penalty; use backend auto or transformers")
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
    desc: str = "generate",
    progress: bool = True,
) -> list[list[int]]:
    """Continue each prompt and return the new token ids, in the input order.

    Args:
        model: A transformers causal LM or seq2seq model (`model.config.is_encoder_decoder`).
        tokenizer: Its tokenizer; `pad_token_id` and `eos_token_id` must be set.
        prompts: Token ids per prompt, no special tokens added. Causal: the text to continue;
            seq2seq: the encoder input.
        decoding: Method (sample, greedy, beam), its settings and the batch token budget.
        max_new_tokens: Most new tokens per prompt.
        seed: Sampling seed; same inputs and seed give the same outputs.
        desc: Progress bar label.
        progress: Show a progress bar on stderr.

    Returns:
        Per prompt, the new token ids only, cut before the first EOS.
    """
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ValueError("generate: tokenizer needs pad_token_id and eos_token_id")
    if any(len(p) == 0 for p in prompts) and not model.config.is_encoder_decoder:
        raise ValueError("generate: causal prompts must be non-empty")
    if not prompts:
        return []
    if generation_backend(decoding) == "vllm":
        return _generate_vllm(
            model, tokenizer, prompts, decoding, max_new_tokens=max_new_tokens, seed=seed
        )
    return _generate_transformers(
        model,
        tokenizer,
        prompts,
        decoding,
        max_new_tokens=max_new_tokens,
        seed=seed,
        desc=desc,
        progress=progress,
    )


def _generation_config(
    model: Any, tokenizer: Any, decoding: DecodingBlock, max_new_tokens: int
) -> Any:
    from transformers import GenerationConfig

    # Every knob is set explicitly: a pretrained model's generation_config.json (e.g. BART's
    # no_repeat_ngram_size=3, num_beams=4) must not leak into the experiment's decoding.
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        do_sample=decoding.method == "sample",
        num_beams=decoding.num_beams if decoding.method == "beam" else 1,
        temperature=decoding.temperature if decoding.method == "sample" else 1.0,
        top_p=decoding.top_p if decoding.method == "sample" else 1.0,
        top_k=decoding.top_k if decoding.method == "sample" else 0,
        repetition_penalty=decoding.repetition_penalty,
        no_repeat_ngram_size=0,
        length_penalty=1.0,
        early_stopping=False,
        num_return_sequences=1,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        decoder_start_token_id=model.config.decoder_start_token_id
        if model.config.is_encoder_decoder
        else None,
        use_cache=True,
    )


def _generate_transformers(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    decoding: DecodingBlock,
    *,
    max_new_tokens: int,
    seed: int,
    desc: str,
    progress: bool,
) -> list[list[int]]:
    if not {"OMP_NUM_THREADS", "MKL_NUM_THREADS"} & os.environ.keys():
        torch.set_num_threads(os.cpu_count() or 1)
    encoder_decoder = bool(model.config.is_encoder_decoder)
    # Our own loop serves causal greedy / sampling (the collapse loop's bulk); beam search
    # and seq2seq go through model.generate, batched the same way.
    own_loop = not encoder_decoder and decoding.method != "beam"
    gen_config = _generation_config(model, tokenizer, decoding, max_new_tokens)
    beams = gen_config.num_beams
    # Seq2seq: the budget holds the encoder input plus a decoder of max_new_tokens.
    batches = token_budget_batches(
        [len(p) for p in prompts], decoding.batch_tokens, extra=max_new_tokens, copies=beams
    )
    outputs: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    bar = tqdm(
        total=len(prompts), desc=desc, unit="prompt", disable=not progress, dynamic_ncols=True
    )
    try:
        for b, idx in enumerate(batches):
            batch = [prompts[i] for i in idx]
            # Each batch draws from its own seeded stream: its samples depend only on
            # (seed, batch index, its prompts), and the caller's global RNG is left untouched.
            batch_seed = seed * 1_000_003 + b
            with torch.inference_mode():
                if own_loop:
                    gen = torch.Generator(device=model.device).manual_seed(batch_seed)
                    new = _decode_causal(model, batch, decoding, max_new_tokens, tokenizer, gen)
                else:
                    with torch.random.fork_rng(devices=[]):
                        torch.manual_seed(batch_seed)
                        new = _hf_generate(model, batch, gen_config)
            eos_id = tokenizer.eos_token_id
            for i, ids in zip(idx, new, strict=True):
                outputs[i] = ids[: ids.index(eos_id)] if eos_id in ids else ids
            bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return outputs


def _hf_generate(model: Any, batch: list[Sequence[int]], gen_config: Any) -> list[list[int]]:
    """model.generate on one batch: causal prompts left-padded, encoder inputs right-padded."""
    encoder_decoder = bool(model.config.is_encoder_decoder)
    width = max(len(p) for p in batch)
    input_ids = torch.full((len(batch), width), gen_config.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, p in enumerate(batch):
        span = slice(0, len(p)) if encoder_decoder else slice(width - len(p), width)
        input_ids[row, span] = torch.tensor(p, dtype=torch.long)
        attention_mask[row, span] = 1
    out = model.generate(
        input_ids=input_ids.to(model.device),
        attention_mask=attention_mask.to(model.device),
        generation_config=gen_config,
    )
    new = out[:, 1:] if encoder_decoder else out[:, width:]  # drop decoder start / prompt
    return new.tolist()


def _decode_causal(
    model: Any,
    batch: list[Sequence[int]],
    decoding: DecodingBlock,
    max_new_tokens: int,
    tokenizer: Any,
    gen: torch.Generator,
) -> list[list[int]]:
    """Greedy or sampled continuation of one batch of causal prompts with a preallocated KV cache.

    Why not model.generate: per step it re-concatenates the whole KV cache, draws a sample
    with an exponential per vocabulary entry (torch.multinomial), and keeps finished rows
    in the batch. Here the cache is written in place, sampling is one uniform per row
    through the CDF, and finished rows are dropped from the batch as they accumulate.
    The logits processors are transformers' own, so repetition penalty, temperature, top-k
    and top-p mean exactly what they mean there.

    Returns, per prompt, the new tokens (up to and including EOS, if produced).
    """
    from transformers import Cache

    device, eos_id = model.device, tokenizer.eos_token_id
    n = len(batch)
    lengths = torch.tensor([len(p) for p in batch], device=device)
    width = int(lengths.max())
    total = width + max_new_tokens
    ids = torch.empty((n, total), dtype=torch.long, device=device)  # (B, T) prompt | new
    key_ok = torch.zeros((n, total), dtype=torch.bool, device=device)  # (B, T) real tokens
    for row, p in enumerate(batch):  # left padding: every prompt ends at column width-1
        # The pad slots hold the prompt's first token, not pad_id: they are masked out of
        # attention either way, and the repetition penalty, which reads ids as the history,
        # then sees exactly the tokens this prompt would show alone (no penalised pad).
        ids[row, : width - len(p)] = p[0]
        ids[row, width - len(p) : width] = torch.tensor(p, dtype=torch.long)
        key_ok[row, width - len(p) : width] = True
    padded = bool((lengths != width).any())
    positions = (key_ok[:, :width].long().cumsum(-1) - 1).clamp(min=0)  # (B, W)
    if padded:
        # (B, 1, W, W): causal, never onto a pad key; a pad query sees itself so no row is
        # empty (an all-masked row gives NaN, and NaN values would leak through 0 weights).
        causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
        mask = (causal & key_ok[:, None, :width]) | torch.eye(
            width, dtype=torch.bool, device=device
        )
        mask = mask[:, None]
    else:
        mask = None  # SDPA's causal kernel, no mask tensor at all
    n_layers = model.config.get_text_config(decoder=True).num_hidden_layers
    cache = Cache(layers=[_PreallocatedLayer(total) for _ in range(n_layers)])
    logits = model(
        input_ids=ids[:, :width],
        attention_mask=mask,
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1]  # (B, V)
    processors = _logits_processors(decoding)
    new = torch.full((n, max_new_tokens), eos_id, dtype=torch.long, device=device)  # (B, N)
    rows = torch.arange(n, device=device)  # original row of each active row
    next_pos = lengths.clone()[:, None]  # (B, 1) position of the next token
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    for t in range(max_new_tokens):
        scores = processors(ids[:, : width + t], logits.float())
        if decoding.method == "greedy":
            token = scores.argmax(-1)  # (B,)
        else:
            probs = scores.softmax(-1)
            cdf = probs.cumsum(-1)  # (B, V)
            u = torch.rand((len(rows), 1), generator=gen, device=device) * cdf[:, -1:]
            token = torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=cdf.shape[-1] - 1)
        new[rows, t] = token
        ids[:, width + t] = token
        key_ok[:, width + t] = True
        finished |= token == eos_id
        if t == max_new_tokens - 1 or bool(finished.all()):
            break
        if int(finished.sum()) * 4 >= len(rows):
            # A quarter of the rows has finished: drop them so no step is spent on them.
            # Finished rows still in the batch decode on; their tokens after EOS are cut.
            keep = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            ids, key_ok, rows, next_pos, token = (
                x[keep] for x in (ids, key_ok, rows, next_pos, token)
            )
            finished = finished[keep]
        step_mask = key_ok[:, None, None, : width + t + 1] if padded else None  # (B, 1, 1, L)
        logits = model(
            input_ids=token[:, None],
            attention_mask=step_mask,
            position_ids=next_pos,
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
        next_pos = next_pos + 1
    return new.tolist()


def _logits_processors(decoding: DecodingBlock) -> Any:
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    procs = LogitsProcessorList()
    if decoding.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(decoding.repetition_penalty))
    if decoding.method == "sample":  # transformers' order: temperature, top-k, top-p
        if decoding.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(decoding.temperature))
        if decoding.top_k > 0:
            procs.append(TopKLogitsWarper(decoding.top_k))
        if decoding.top_p < 1.0:
            procs.append(TopPLogitsWarper(decoding.top_p))
    return procs


class _PreallocatedLayer(DynamicLayer):
    """A KV cache layer with its (B, H, max_len, D) buffers allocated once and written in place.

    DynamicLayer concatenates, copying the whole cache every step; StaticLayer returns the
    full max_len buffers, so attention reads empty slots. This one returns views of the
    filled prefix, so each step reads exactly the cached tokens and copies nothing.
    """

    def __init__(self, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        b, h, _, _ = key_states.shape
        self.k_buf = key_states.new_empty((b, h, self.max_len, key_states.shape[-1]))
        self.v_buf = value_states.new_empty((b, h, self.max_len, value_states.shape[-1]))
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self.k_buf[:, :, self.length : end] = key_states
        self.v_buf[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self.k_buf[:, :, :end], self.v_buf[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.k_buf, self.v_buf = self.k_buf[indices], self.v_buf[indices]
        self.keys, self.values = self.k_buf[:, :, : self.length], self.v_buf[:, :, : self.length]


def _generate_vllm(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    decoding: DecodingBlock,
    *,
    max_new_tokens: int,
    seed: int,
) -> list[list[int]]:
    """vLLM backend: the model is saved to a temporary folder and served from there."""
    import tempfile

    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    with tempfile.TemporaryDirectory(prefix="collapselab-vllm-") as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        llm = LLM(model=folder, seed=seed, dtype="bfloat16", enforce_eager=False)
        token_prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        if decoding.method == "beam":
            from vllm.sampling_params import BeamSearchParams

            params = BeamSearchParams(beam_width=decoding.num_beams, max_tokens=max_new_tokens)
            results = llm.beam_search(token_prompts, params)
            # Beam sequences hold prompt + continuation; the best beam comes first.
            outs = [r.sequences[0].tokens[len(p) :] for r, p in zip(results, prompts, strict=True)]
        else:
            greedy = decoding.method == "greedy"
            params = SamplingParams(
                n=1,
                temperature=0.0 if greedy else decoding.temperature,
                top_p=1.0 if greedy else decoding.top_p,
                top_k=-1 if greedy or decoding.top_k == 0 else decoding.top_k,
                repetition_penalty=decoding.repetition_penalty,
                max_tokens=max_new_tokens,
                seed=seed,
                stop_token_ids=[tokenizer.eos_token_id],
            )
            results = llm.generate(token_prompts, params, use_tqdm=False)
            outs = [list(r.outputs[0].token_ids) for r in results]
        del llm
    eos_id = tokenizer.eos_token_id
    return [o[: o.index(eos_id)] if eos_id in o else list(o) for o in outs]

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

from collapselab.config import DecodingBlock


def generation_backend(decoding: DecodingBlock) -> str:
    """The backend `generate` uses for these decoding settings: "transformers" or "vllm".

    vLLM needs the package and a CUDA GPU; "auto" picks it when both are there. Asking for
    "vllm" without them is an error, not a silent fallback.
    """
    vllm_ok = importlib.util.find_spec("vllm") is not None and torch.cuda.is_available()
    if decoding.backend == "vllm" and not vllm_ok:
        raise RuntimeError("decoding.backend: 'vllm' needs the vllm package and a CUDA GPU")
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


def length_batches(
    lengths: Sequence[int], budget: int, extra: int, copies: int = 1
) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded size fits `budget`.

    A batch of b prompts of at most L tokens costs b * (L + extra) * copies tokens; a prompt
    over budget on its own still gets a batch of one. Sorting is stable, so batching is a
    pure function of the lengths.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        # Sorted ascending: the newcomer is the longest, so it sets the padded length.
        cost = (len(batches[-1]) + 1) * (lengths[i] + extra) * copies if batches else None
        if cost is None or cost > budget:
            batches.append([i])
        else:
            batches[-1].append(i)
    return batches


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
    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() != os.cpu_count():
        torch.set_num_threads(os.cpu_count() or 1)
    encoder_decoder = bool(model.config.is_encoder_decoder)
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    device = next(model.parameters()).device
    gen_config = _generation_config(model, tokenizer, decoding, max_new_tokens)
    beams = gen_config.num_beams
    # Seq2seq: the budget holds the encoder input plus a decoder of max_new_tokens.
    batches = length_batches(
        [len(p) for p in prompts], decoding.batch_tokens, max_new_tokens, beams
    )
    outputs: list[list[int] | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    bar = tqdm(
        total=len(prompts), desc=desc, unit="prompt", disable=not progress, dynamic_ncols=True
    )
    try:
        for b, idx in enumerate(batches):
            width = max(len(prompts[i]) for i in idx)
            input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                n = len(prompts[i])
                if encoder_decoder:  # encoder sees the whole input: pad on the right
                    input_ids[row, :n] = torch.tensor(prompts[i], dtype=torch.long)
                    attention_mask[row, :n] = 1
                else:  # decoder continues the last token: pad on the left
                    input_ids[row, width - n :] = torch.tensor(prompts[i], dtype=torch.long)
                    attention_mask[row, width - n :] = 1
            # Each batch draws from its own seeded stream, so a batch's samples depend only on
            # (seed, batch index, its prompts) and the caller's global RNG is left untouched.
            with torch.random.fork_rng(devices=[]), torch.inference_mode():
                torch.manual_seed(seed * 1_000_003 + b)
                out = model.generate(
                    input_ids=input_ids.to(device),
                    attention_mask=attention_mask.to(device),
                    generation_config=gen_config,
                )
            new = out[:, 1:] if encoder_decoder else out[:, width:]  # drop decoder start / prompt
            for row, i in enumerate(idx):
                ids = new[row].tolist()
                outputs[i] = ids[: ids.index(eos_id)] if eos_id in ids else ids
            bar.update(len(idx))
    finally:
        bar.close()
        model.train(was_training)
    return [o for o in outputs if o is not None]


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

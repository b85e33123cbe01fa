"""The vLLM backend (a CUDA GPU with the vllm package): one engine per model, every prompt its own seed.

Building an engine costs tens of seconds (weights written out, loaded, CUDA graphs
captured), so it is built once per model and kept: a later call with the same weights
reuses it, a call with different weights (a new generation's model) replaces it. Between
calls the engine sleeps (weights offloaded to CPU memory, KV cache freed) so the HF model,
which evaluation and training use, gets the GPU back. The HF copy leaves the GPU before the
engine is built or woken, so vLLM's memory budget is measured on a GPU that holds only it.
"""

from __future__ import annotations

import copy
import gc
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from collapselab.generation.sampling import PromptSampling
from collapselab.generation.streams import prompt_key

if TYPE_CHECKING:
    from collapselab.config import DecodingBlock

# Share of the GPU vLLM may take: the rest stays for the HF model's activations between calls.
GPU_MEMORY_UTILIZATION = 0.85


@dataclass
class _Engine:
    key: tuple
    llm: Any
    folder: tempfile.TemporaryDirectory


_engine: _Engine | None = None


def weights_key(model: Any) -> tuple:
    """What identifies a model's weights: names, shapes and two sums per tensor.

    In-place training changes the sums, so a trained model never reuses the engine of its
    starting point; the same weights reloaded into a new object do reuse it.
    """
    named = list(model.named_parameters())
    sums = torch.stack([torch.stack([p.detach().float().sum(), p.detach().float().square().sum()]) for _, p in named])
    return (type(model).__name__, tuple((n, tuple(p.shape)) for n, p in named), tuple(map(tuple, sums.tolist())))


def _export(model: Any, tokenizer: Any, folder: str) -> None:
    """Write the model as a plain HF folder; a PEFT model is written with its adapters merged."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        copy.deepcopy(model).merge_and_unload().save_pretrained(folder)
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def close_engine() -> None:
    """Shut the cached engine down and free its GPU memory (also done before a new one)."""
    global _engine
    if _engine is not None:
        engine, _engine = _engine, None
        del engine.llm
        engine.folder.cleanup()
        gc.collect()
        torch.cuda.empty_cache()


def engine_for(model: Any, tokenizer: Any) -> Any:
    """The vLLM engine of this model's weights, built on the first call and awake.

    The HF model must already be off the GPU (`generate_vllm` moves it).
    """
    global _engine
    from vllm import LLM

    key = weights_key(model)
    if _engine is not None and _engine.key == key:
        _engine.llm.wake_up()
        return _engine.llm
    close_engine()
    folder = tempfile.TemporaryDirectory(prefix="collapselab-vllm-")
    _export(model, tokenizer, folder.name)
    llm = LLM(
        model=folder.name,
        dtype="bfloat16",
        seed=0,
        enable_prefix_caching=True,  # shared prompt prefixes are computed once, as on CPU
        enable_sleep_mode=True,
        gpu_memory_utilization=GPU_MEMORY_UTILIZATION,
    )
    _engine = _Engine(key=key, llm=llm, folder=folder)
    return llm


def sampling_params(
    settings: Sequence[PromptSampling], decoding: DecodingBlock, seed: int, max_new_tokens: int, eos_id: int
) -> list[Any]:
    """One SamplingParams per prompt, each with the prompt's own seed (its own random stream)."""
    from vllm import SamplingParams

    params = []
    for i, s in enumerate(settings):
        greedy = s.method == "greedy"
        params.append(
            SamplingParams(
                n=1,
                temperature=0.0 if greedy else s.temperature,
                top_p=1.0 if greedy else s.top_p,
                top_k=-1 if greedy or s.top_k == 0 else s.top_k,
                repetition_penalty=decoding.repetition_penalty,
                presence_penalty=s.presence_penalty,
                frequency_penalty=s.frequency_penalty,
                max_tokens=s.max_new_tokens or max_new_tokens,
                seed=prompt_key(seed, i) >> 1,  # vLLM takes a signed 64-bit seed
                stop_token_ids=[eos_id],
            )
        )
    return params


def generate_vllm(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    decoding: DecodingBlock,
    settings: Sequence[PromptSampling],
    *,
    max_new_tokens: int,
    seed: int,
) -> list[list[int]]:
    """Continue the prompts through the cached engine; the HF model is back on its device after."""
    from vllm.inputs import TokensPrompt

    device = model.device
    model.to("cpu")  # free the HF copy on the GPU before vLLM sizes its KV cache
    torch.cuda.empty_cache()
    try:
        llm = engine_for(model, tokenizer)
        token_prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        if decoding.method == "beam":
            from vllm.sampling_params import BeamSearchParams

            params = BeamSearchParams(beam_width=decoding.num_beams, max_tokens=max_new_tokens)
            results = llm.beam_search(token_prompts, params)
            # Beam sequences hold prompt + continuation; the best beam comes first.
            outs = [list(r.sequences[0].tokens[len(p) :]) for r, p in zip(results, prompts, strict=True)]
        else:
            params = sampling_params(settings, decoding, seed, max_new_tokens, tokenizer.eos_token_id)
            results = llm.generate(token_prompts, params, use_tqdm=False)
            outs = [list(r.outputs[0].token_ids) for r in results]
        llm.sleep(level=1)
    finally:
        model.to(device)
    eos_id = tokenizer.eos_token_id
    return [o[: o.index(eos_id)] if eos_id in o else o for o in outs]

"""The vLLM backend with vllm replaced at its import boundary (no GPU here): one engine per
model's weights, the HF copy off the GPU first, one SamplingParams (own seed) per prompt."""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types
from dataclasses import dataclass, field

import pytest
import torch
from tiny import peaked_llama, prompts_of

from collapselab.config import DecodingBlock
from collapselab.generation import PromptSampling, generate, generation_backend
from collapselab.generation import vllm as backend


@dataclass
class FakeVllm:
    """What the fake vllm saw: engines built, events in order, the params of every call."""

    events: list[str] = field(default_factory=list)
    engines: list[dict] = field(default_factory=list)
    params: list[list] = field(default_factory=list)


@pytest.fixture
def fake_vllm(monkeypatch):
    seen = FakeVllm()

    class SamplingParams:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class LLM:
        def __init__(self, **kw):
            seen.events.append("LLM")
            files = set(os.listdir(kw["model"]))
            seen.engines.append(kw | {"files": files})

        def generate(self, prompts, params, use_tqdm):
            seen.events.append("generate")
            seen.params.append(params)
            # A continuation that shows which seed and prompt it came from, then EOS.
            return [
                types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=[p.seed % 97, len(x["prompt_token_ids"]), 1, 5])])
                for x, p in zip(prompts, params, strict=True)
            ]

        def sleep(self, level):
            seen.events.append(f"sleep{level}")

        def wake_up(self):
            seen.events.append("wake_up")

    vllm = types.ModuleType("vllm")
    vllm.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = dict
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.inputs", inputs)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: seen.events.append("empty_cache"))
    monkeypatch.setattr(backend, "_engine", None)
    yield seen
    backend.close_engine()


def _watch_moves(model, seen: FakeVllm):
    to = model.to

    def recording_to(device, *a, **k):
        seen.events.append(f"to:{device}")
        return to(device, *a, **k)

    model.to = recording_to
    return model


def test_engine_is_built_once_per_model_and_rebuilt_for_new_weights(tokenizer, fake_vllm):
    model = _watch_moves(peaked_llama(tokenizer), fake_vllm)
    decoding = DecodingBlock(method="sample")
    assert generation_backend(decoding) == "vllm"
    prompts = prompts_of(tokenizer, 4)
    first = generate(model, tokenizer, prompts, decoding, max_new_tokens=8, seed=3, progress=False)
    again = generate(model, tokenizer, prompts, decoding, max_new_tokens=8, seed=3, progress=False)
    assert len(fake_vllm.engines) == 1 and first == again
    # The HF copy leaves the GPU before the engine is built or woken, and comes back after.
    assert fake_vllm.events == ["to:cpu", "empty_cache", "LLM", "generate", "sleep1", "to:cpu",
                                "to:cpu", "empty_cache", "wake_up", "generate", "sleep1", "to:cpu"]
    assert fake_vllm.engines[0]["enable_prefix_caching"] and fake_vllm.engines[0]["enable_sleep_mode"]
    assert "config.json" in fake_vllm.engines[0]["files"]
    assert all(len(o) == 2 for o in first)  # cut before EOS (id 1)
    with torch.no_grad():  # training changes the weights in place: a new engine
        next(model.parameters()).add_(0.01)
    del fake_vllm.events[:]
    generate(model, tokenizer, prompts, decoding, max_new_tokens=8, seed=3, progress=False)
    assert len(fake_vllm.engines) == 2
    # The old engine is shut down (its memory freed) before the new one is built.
    assert fake_vllm.events[:4] == ["to:cpu", "empty_cache", "empty_cache", "LLM"]


def test_every_prompt_has_its_own_sampling_params_and_seed(tokenizer, fake_vllm):
    model = peaked_llama(tokenizer)
    prompts = prompts_of(tokenizer, 5)
    settings = [PromptSampling(method="greedy"), PromptSampling(temperature=0.5, top_k=7),
                PromptSampling(top_p=0.9, max_new_tokens=3), PromptSampling(), PromptSampling()]
    generate(model, tokenizer, prompts, DecodingBlock(repetition_penalty=1.2), max_new_tokens=8, seed=0,
             sampling=settings, progress=False)
    generate(model, tokenizer, prompts[:3], DecodingBlock(), max_new_tokens=8, seed=0, progress=False)
    generate(model, tokenizer, prompts[:3], DecodingBlock(), max_new_tokens=8, seed=1, progress=False)
    mixed, sub, other_seed = fake_vllm.params
    assert len(mixed) == 5 and len({p.seed for p in mixed}) == 5
    assert [p.seed for p in sub] == [p.seed for p in mixed[:3]]  # a function of (seed, index) only
    assert not {p.seed for p in other_seed} & {p.seed for p in sub}
    assert (mixed[0].temperature, mixed[1].temperature, mixed[1].top_k, mixed[2].top_p) == (0.0, 0.5, 7, 0.9)
    assert [p.max_tokens for p in mixed] == [8, 8, 3, 8, 8]
    assert all(p.repetition_penalty == 1.2 and 0 <= p.seed < 2**63 for p in mixed)


def test_lora_model_is_exported_merged(tokenizer, fake_vllm):
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(peaked_llama(tokenizer), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    generate(lora, tokenizer, prompts_of(tokenizer, 2), DecodingBlock(), max_new_tokens=4, seed=0, progress=False)
    files = fake_vllm.engines[0]["files"]
    assert "model.safetensors" in files and "adapter_config.json" not in files
    assert any(n.endswith("lora_A.default.weight") for n, _ in lora.named_parameters())  # left unmerged

"""The catalogue's pretrained models, from their real PyPI packages, with the network off:
dequantized once per session (the `catalogue_model` fixture), reloaded from the cache by
name, and checked to be real language models, not merely loadable tensors."""

from __future__ import annotations

import collections
import json
import math
import time

import pytest

from collapselab.models import catalogue
from collapselab.models.loading import load_model, max_positions, resolve_model_path

pytestmark = pytest.mark.integration

# name -> (architecture, eos token, pad token, position limit)
EXPECTED = {
    "smollm2-135m-instruct": ("LlamaForCausalLM", "<|im_end|>", "<|im_end|>", 8192),
    "gemma-3-270m": ("Gemma3ForCausalLM", "<eos>", "<pad>", 32768),
}
PASSAGE_TOKENS = 512
# A 135M-270M LM scores held-out WikiText-2 at a perplexity in the 10s (SmolLM2 21.0,
# Gemma 3 14.8 on this passage); GPT-2 small, the weakest LM anyone benchmarks there, is
# near 30. 40 leaves room for the passage, and is 30x below a unigram model of the
# training split (1234 / 1571 under these tokenizers): a model with a wrongly converted
# norm, rotary layout or tokenizer lands in the hundreds or thousands.
PERPLEXITY_BOUND = 40.0


def _passage(shared_data) -> str:
    return (shared_data / "wikitext2" / "wiki.test.raw").read_text()[:6000]


def _unigram_perplexity(tokenizer, train_text: str, ids: list[int]) -> float:
    """Add-one unigram model of the training text, scored on the passage's targets."""
    counts: collections.Counter[int] = collections.Counter()
    for line in tokenizer(train_text.split("\n"), add_special_tokens=False)["input_ids"]:
        counts.update(line)
    total, vocab = sum(counts.values()), len(tokenizer)
    nll = -sum(math.log((counts[i] + 1) / (total + vocab)) for i in ids[1:]) / (len(ids) - 1)
    return math.exp(nll)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_catalogue_model_from_its_package_is_a_real_language_model(name, catalogue_model, shared_data, monkeypatch):
    import torch

    folder = catalogue_model(name)
    info = json.loads((folder / "catalogue.json").read_text())
    model_entry = catalogue.entry(name)
    assert info["gguf_sha256"] == model_entry.sha256
    assert info["parameters"] == model_entry.parameters and info["seconds"] > 0
    assert (folder / "model.safetensors").exists() and not list(folder.rglob("*.gguf"))  # the GGUF copy is gone
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())

    # Every later use is a cache hit: converting again would raise.
    def convert_again(*_):
        raise AssertionError("dequantized twice")

    monkeypatch.setattr(catalogue, "_convert", convert_again)
    start = time.perf_counter()
    loaded = load_model(name, for_training=False)  # by name, through the one resolver
    load_seconds = time.perf_counter() - start
    assert resolve_model_path(name).endswith(folder.name)
    assert load_seconds < info["seconds"] / 2  # a safetensors load, not a conversion

    arch, eos, pad, positions = EXPECTED[name]
    model, tok = loaded.model, loaded.tokenizer
    assert type(model).__name__ == arch == info["architecture"]
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    assert (tok.eos_token, tok.pad_token, tok.padding_side) == (eos, pad, "left")
    assert model.generation_config.eos_token_id == tok.eos_token_id == model.config.eos_token_id
    assert max_positions(name, tok) == positions == tok.model_max_length

    # Fails on garbage: held-out WikiText-2 perplexity far below a unigram model's.
    ids = tok(_passage(shared_data))["input_ids"][:PASSAGE_TOKENS]  # Gemma's own <bos> included
    assert len(ids) == PASSAGE_TOKENS
    with torch.inference_mode():
        x = torch.tensor([ids])
        ppl = math.exp(model(input_ids=x, labels=x).loss.item())
    train = (shared_data / "wikitext2" / "wiki.train.raw").read_text()[:1_000_000]
    unigram = _unigram_perplexity(tok, train, ids)
    assert ppl < PERPLEXITY_BOUND and ppl < unigram / 20, (ppl, unigram)


def test_smollm2_answers_through_its_chat_template_and_stops_at_eos(catalogue_model):
    import torch

    loaded = load_model(catalogue_model("smollm2-135m-instruct"), for_training=False)
    tok = loaded.tokenizer
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert prompt.endswith("<|im_start|>assistant\n")  # the template came through the GGUF
    x = tok(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model.generate(**x, max_new_tokens=24, do_sample=False)
    new = out[0, x["input_ids"].shape[1] :].tolist()
    assert new[-1] == tok.eos_token_id  # finished on its own, before the token limit
    assert "Paris" in tok.decode(new, skip_special_tokens=True)

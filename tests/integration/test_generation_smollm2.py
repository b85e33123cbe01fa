"""Shared-prefix decoding on the real SmolLM2-135M-Instruct: SQuAD v2 prompts laid out as
[instruction + context] + [question + answer cue], 1, 2 and 9 questions per context."""

from __future__ import annotations

import json

import pytest
import torch

from collapselab.config import DecodingBlock
from collapselab.generation import generate

INSTRUCTION = "Answer the question with a short span copied from the context."


@pytest.fixture
def smollm2(catalogue_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = catalogue_model("smollm2-135m-instruct")
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(folder)


def _prompts(tok, data_dir) -> tuple[list[list[int]], list[int]]:
    data = json.loads((data_dir / "squad_v2" / "dev-v2.0.subset16articles.json").read_text(encoding="utf-8"))["data"]
    paragraphs = sorted((p for a in data for p in a["paragraphs"]), key=lambda p: len(p["context"]))
    prompts, prefix = [], []
    for n_q in (1, 2, 9):  # the shortest contexts with at least n_q questions
        para = next(p for p in paragraphs if len(p["qas"]) >= n_q)
        paragraphs.remove(para)
        head = tok(f"<|im_start|>system\n{INSTRUCTION}<|im_end|>\n<|im_start|>user\nContext: {para['context']}\n",
                   add_special_tokens=False)["input_ids"]
        for qa in para["qas"][:n_q]:
            tail = tok(f"Question: {qa['question']}<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)
            prompts.append(head + tail["input_ids"])
            prefix.append(len(head))
    return prompts, prefix


def test_smollm2_shared_prefix_equals_unshared(smollm2, shared_data):
    model, tok = smollm2
    prompts, prefix = _prompts(tok, shared_data)
    greedy = DecodingBlock(method="greedy")
    unshared = generate(model, tok, prompts, greedy, max_new_tokens=12, seed=0, progress=False)
    shared = generate(model, tok, prompts, greedy, max_new_tokens=12, seed=0, prefix_lengths=prefix, progress=False)
    assert shared == unshared
    assert sum(len(o) > 0 for o in shared) >= len(prompts) - 1  # it answers, not only EOS
    sample = DecodingBlock(method="sample", temperature=0.8, top_p=0.95)
    a = generate(model, tok, prompts, sample, max_new_tokens=8, seed=3, progress=False)
    b = generate(model, tok, prompts, sample, max_new_tokens=8, seed=3, prefix_lengths=prefix, progress=False)
    assert a == b

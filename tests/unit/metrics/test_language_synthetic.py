"""Per-sequence perplexity of synthetic data under the generation-0 model: batching changes nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from collapselab.metrics import EvalInputs, evaluate
from collapselab.records import Record

TEXTS = ["the cat sat on the mat.", "", "a big red bird flew over the small house quickly.", "dog", "the tree"]


def _one_by_one(model, tok, text):
    ids = [tok.eos_token_id, *tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]
    x = torch.tensor([ids])
    with torch.no_grad():
        return model(input_ids=x, labels=x).loss.item()  # mean NLL of tokens 2..T, no padding


def test_synthetic_perplexity_is_per_sequence_under_the_reference_model(tiny_causal, tiny_tokenizer):
    synthetic = [Record(id=f"s{i}", source="synthetic", generation=1, text=t) for i, t in enumerate(TEXTS)]
    inputs = EvalInputs(task="lm", test=[Record(id="h", text="x")], synthetic=synthetic,
                        generation0_model=tiny_causal, tokenizer=tiny_tokenizer, batch_tokens=24)
    out = evaluate(["synthetic_perplexity"], inputs)["synthetic_perplexity"]
    expected = [math.exp(_one_by_one(tiny_causal, tiny_tokenizer, t)) for t in TEXTS]
    assert out.per_example == pytest.approx(expected, rel=1e-4)
    assert out.value == pytest.approx(float(np.median(expected)), rel=1e-4)
    assert out.details["p99"] >= out.details["p90"] >= out.details["median"]
    assert out.version == "1" and not out.higher_is_better

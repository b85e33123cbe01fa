"""The external reference (a model with its own tokenizer, independent of the run's):
per-sequence perplexity and surprisal of synthetic data per generation, of the human test
set once per run, on a seeded sample of bounded size."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from tiny import bpe_tokenizer, llama

from collapselab.metrics import EvalInputs, default_metrics, evaluate
from collapselab.metrics.external import sample_indices
from collapselab.metrics.registry import EXTERNAL_DEFAULTS, run_metrics
from collapselab.records import Record
from collapselab.tasks import get_task

WORDS = "the a cat dog bird sat ran flew on under over mat tree house red big small quickly slowly".split()


@pytest.fixture(scope="module")
def external():
    """A tiny random causal LM with a tokenizer unlike the run's (other vocabulary, no pad token)."""
    rng = random.Random(9)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(300)]
    tokenizer = bpe_tokenizer(corpus, 120, ["<unk>", "<s>"], byte_level=False)
    model = llama(len(tokenizer), seed=3, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                  max_position_embeddings=256, tie_word_embeddings=False)
    return model.eval(), tokenizer


def _records(texts, source="synthetic"):
    return [Record(id=f"{source}-{i}", source=source, generation=1 if source == "synthetic" else None, text=t)
            for i, t in enumerate(texts)]


def _inputs(external, synthetic=None, test=("the cat sat on the mat",), **kw):
    model, tok = external
    return EvalInputs(task="lm", test=_records(test, "human"), synthetic=_records(synthetic) if synthetic is not None else None,
                      external_model=model, external_tokenizer=tok, external_name="tiny-external", **kw)


def _alone(external, text):
    model, tok = external
    ids = tok(text, add_special_tokens=False)["input_ids"]
    x = torch.tensor([ids])
    with torch.no_grad():
        return model(input_ids=x, labels=x).loss.item(), len(ids) - 1  # mean NLL of tokens 2..T, no padding


def test_each_text_is_scored_alone_with_the_external_tokenizer(external, tiny_tokenizer):
    texts = ["the cat sat on the mat", "", "a big red bird flew over the small house quickly", "dog", "the tree under a mat"]
    inputs = _inputs(external, texts, tokenizer=tiny_tokenizer, batch_tokens=16, external_sequences=100)
    out = evaluate(EXTERNAL_DEFAULTS, inputs)
    scorable = [t for t in texts if len(external[1](t, add_special_tokens=False)["input_ids"]) >= 2]
    assert scorable == [texts[0], texts[2], texts[4]]  # "" and "dog" (one token) have no target
    alone = [_alone(external, t) for t in scorable]
    ppl = out["external_synthetic_perplexity"]
    assert ppl.details["per_sequence"] == pytest.approx([math.exp(nll) for nll, _ in alone], rel=1e-4)
    assert ppl.value == pytest.approx(float(np.median(ppl.details["per_sequence"])), rel=1e-6)
    assert ppl.details["p99"] >= ppl.details["p90"] >= ppl.details["median"]
    assert (ppl.details["sequences"], ppl.details["sampled"], ppl.details["of"]) == (3, 5, 5)
    assert ppl.details["scored_by"] == "tiny-external" and not ppl.higher_is_better
    surprisal = out["external_surprisal"]
    tokens = sum(n for _, n in alone)
    assert surprisal.value == pytest.approx(sum(nll * n for nll, n in alone) / tokens / math.log(2), rel=1e-4)
    assert surprisal.details["per_sequence"] == pytest.approx([nll / math.log(2) for nll, _ in alone], rel=1e-3)
    assert ppl.per_example is None and ppl.details["indices"] == [0, 2, 4]  # a sample: no per-record list


def test_at_most_external_sequences_texts_are_scored_a_seeded_sample(external):
    rng = random.Random(1)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(40)]
    first = evaluate(["external_synthetic_perplexity"], _inputs(external, texts, external_sequences=6, seed=11))
    again = evaluate(["external_synthetic_perplexity"], _inputs(external, texts, external_sequences=6, seed=11))
    other = evaluate(["external_synthetic_perplexity"], _inputs(external, texts, external_sequences=6, seed=12))
    d = first["external_synthetic_perplexity"].details
    assert (d["sequences"], d["of"]) == (6, 40)
    assert d["per_sequence"] == again["external_synthetic_perplexity"].details["per_sequence"]
    assert d["per_sequence"] != other["external_synthetic_perplexity"].details["per_sequence"]
    chosen = sample_indices(40, 6, 11)
    assert d["per_sequence"] == pytest.approx([math.exp(_alone(external, texts[i])[0]) for i in chosen], rel=1e-4)


def test_the_human_yardstick_is_computed_once_per_run_not_per_generation(external):
    inputs = _inputs(external, ["the cat sat", "a dog ran on the mat"], test=["the red bird flew over the house", "a cat sat"])
    with pytest.raises(ValueError, match="once per run"):
        evaluate(["external_test_perplexity"], inputs)
    names = run_metrics(get_task("lm"), inputs)
    assert names == ["external_test_perplexity", "external_test_surprisal"]
    out = evaluate(names, inputs, scope="run")
    expected = [math.exp(_alone(external, t)[0]) for t in ["the red bird flew over the house", "a cat sat"]]
    assert out["external_test_perplexity"].details["per_sequence"] == pytest.approx(expected, rel=1e-4)
    assert out["external_test_surprisal"].value > 0


def test_external_metrics_are_defaults_only_with_an_external_model(external):
    with_model = _inputs(external, ["the cat sat"])
    without = EvalInputs(task="lm", test=_records(["the cat"], "human"), synthetic=_records(["the cat sat"]))
    assert set(EXTERNAL_DEFAULTS) <= set(default_metrics(get_task("lm"), with_model))
    assert not set(EXTERNAL_DEFAULTS) & set(default_metrics(get_task("lm"), without))
    assert run_metrics(get_task("lm"), without) == [] and "reference_perplexity" not in default_metrics(get_task("lm"))


def test_surprisal_is_compared_with_the_gibberish_score_text_by_text(external):
    rng = random.Random(2)

    def sentence() -> str:
        return f"the {rng.choice(['red', 'big', 'small'])} {rng.choice(['cat', 'dog', 'bird'])} sat on the {rng.choice(['mat', 'tree', 'house'])}."

    human = [" ".join(sentence() for _ in range(6)) for _ in range(80)]
    synthetic = [" ".join(sentence() for _ in range(2)) for _ in range(10)] + ["qx zzv kkp wrt"] * 3
    test = [" ".join(sentence() for _ in range(3)) for _ in range(30)]
    inputs = _inputs(external, synthetic, test=test, human_train=_records(human, "human"), external_sequences=100)
    out = evaluate(["external_surprisal", "gibberish_score"], inputs)
    rho = out["external_surprisal"].details["gibberish_spearman"]
    assert rho is not None and -1.0 <= rho <= 1.0

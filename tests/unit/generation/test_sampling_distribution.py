"""The sampler draws from the distribution its settings define: temperature, top-k, top-p.

Through the public `generate()` only, on a fixed tiny model: thousands of copies of two
prompts (of different lengths, so the batch is padded) each get one new token, and the
token frequencies are compared with the distribution computed here, independently of
transformers' warpers, from the model's own logits: softmax(logits / T), then the k
most likely, then the smallest set holding mass top_p. Tokens outside that set must never
appear; the frequencies inside it must pass a chi-square test.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from scipy import stats
from tiny import llama, peaked

from collapselab.config import DecodingBlock
from collapselab.generation import generate

VOCAB = 24
EOS = 1  # a sampled EOS comes back as an empty continuation
PROMPTS = ([5, 9, 3], [7, 2, 11, 4, 8])
COPIES = 1500


@pytest.fixture(scope="module")
def model():
    # peaked: logits spread enough that each setting reshapes the distribution
    return peaked(llama(VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=32, tie_word_embeddings=False))


def expected(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """The sampling distribution over the vocabulary, from first principles."""
    probs = torch.softmax(logits.double() / temperature, -1)
    if top_k:
        cut = probs.topk(top_k).values[-1]
        probs = torch.where(probs >= cut, probs, 0.0)
        probs = probs / probs.sum()
    if top_p < 1.0:
        order = probs.argsort(descending=True)
        before = probs[order].cumsum(0) - probs[order]  # mass of the tokens ranked above
        keep = torch.zeros_like(probs, dtype=torch.bool)
        keep[order[before < top_p]] = True  # ...until the set first holds top_p
        probs = torch.where(keep, probs, 0.0)
        probs = probs / probs.sum()
    return probs


@pytest.mark.parametrize(
    ("temperature", "top_k", "top_p"),
    # tests/unit/generation/test_sampling.py checks the same frequencies against transformers'
    # own warpers; here the distribution is derived independently, below temperature 1 too,
    # in a padded batch of two prompt lengths.
    [(0.6, 0, 1.0), (1.0, 0, 0.7), (1.4, 8, 0.85)],
)
def test_token_frequencies_match_the_distribution(model, temperature, top_k, top_p):
    decoding = DecodingBlock(method="sample", temperature=temperature, top_k=top_k, top_p=top_p, batch_tokens=32768)
    prompts = [list(PROMPTS[i % 2]) for i in range(2 * COPIES)]
    tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=EOS)
    out = generate(model, tokenizer, prompts, decoding, max_new_tokens=1, seed=123, progress=False)
    for which, prompt in enumerate(PROMPTS):
        with torch.no_grad():
            logits = model(torch.tensor([prompt])).logits[0, -1]
        p = expected(logits, temperature, top_k, top_p)
        counts = torch.zeros(VOCAB, dtype=torch.float64)
        for ids in out[which::2]:
            counts[ids[0] if ids else EOS] += 1
        support = p > 0
        assert counts[~support].sum() == 0, f"sampled tokens outside the allowed set: {counts.nonzero().flatten().tolist()}"
        assert int(support.sum()) >= 3, "the case should leave several tokens to choose from"
        # Pool the rare tokens so every chi-square cell expects at least 5 draws.
        want = p[support] * COPIES
        got = counts[support]
        rare = want < 5
        want = torch.cat([want[~rare], want[rare].sum().reshape(1)]) if rare.any() else want
        got = torch.cat([got[~rare], got[rare].sum().reshape(1)]) if rare.any() else got
        chi2 = float(((got - want) ** 2 / want).sum())
        p_value = stats.chi2.sf(chi2, df=len(want) - 1)
        assert p_value > 1e-4, f"prompt {which}: chi2 {chi2:.1f} on {len(want) - 1} df (p={p_value:.2g}); expected {want.tolist()}, got {got.tolist()}"


def test_the_test_would_catch_a_sampler_that_ignores_temperature(model):
    # The same check against the wrong distribution (temperature 1 instead of 0.6) fails:
    # the test has the power to see a mis-applied setting, not just a broken one.
    decoding = DecodingBlock(method="sample", temperature=0.6, batch_tokens=32768)
    out = generate(model, SimpleNamespace(pad_token_id=0, eos_token_id=EOS), [list(PROMPTS[0])] * COPIES,
                   decoding, max_new_tokens=1, seed=7, progress=False)
    with torch.no_grad():
        logits = model(torch.tensor([PROMPTS[0]])).logits[0, -1]
    counts = torch.zeros(VOCAB, dtype=torch.float64)
    for ids in out:
        counts[ids[0] if ids else EOS] += 1
    wrong = expected(logits, 1.0, 0, 1.0) * COPIES
    chi2 = float(((counts - wrong) ** 2 / wrong).sum())
    assert stats.chi2.sf(chi2, df=VOCAB - 1) < 1e-6

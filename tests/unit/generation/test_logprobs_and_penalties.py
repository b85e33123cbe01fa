"""What a chat server's researchers score generations with: each new token's log-probability
(and the k most likely), and OpenAI's presence and frequency penalties, per prompt, in the
own decode loop. Log-probabilities must be the model's own (a plain forward pass agrees);
penalties must reshape the distribution exactly as their definition says; with neither, the
decode is what it was (tests/unit/generation/test_generate.py keeps greedy output fixed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from scipy import stats
from tiny import llama, peaked

from collapselab.config import DecodingBlock
from collapselab.generation import GenerationError, PromptSampling, generate

VOCAB = 24
EOS = 1
TOKENIZER = SimpleNamespace(pad_token_id=0, eos_token_id=EOS)
PROMPTS = ([5, 9, 3], [7, 2, 11, 4, 8])


@pytest.fixture(scope="module")
def model():
    return peaked(llama(VOCAB, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=64, tie_word_embeddings=False))


def _next_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0, -1].double()


@pytest.mark.parametrize("setting", [PromptSampling(method="greedy", logprobs=3), PromptSampling(temperature=0.9, top_k=6, logprobs=0)])
def test_logprobs_are_the_model_own_for_every_new_token(model, setting):
    heard: dict[int, list[tuple[int, float, list[tuple[int, float]]]]] = {0: [], 1: []}
    out = generate(model, TOKENIZER, [list(p) for p in PROMPTS], DecodingBlock(batch_tokens=4096), max_new_tokens=6, seed=3,
                   sampling=[setting, setting], on_logprobs=lambda i, tok, lp, top: heard[i].append((tok, lp, top)),
                   progress=False)
    for i, prompt in enumerate(PROMPTS):
        assert [tok for tok, _, _ in heard[i]] == out[i]  # one per new token, EOS not included
        for step, (tok, lp, top) in enumerate(heard[i]):
            want = _next_logits(model, [*prompt, *out[i][:step]]).log_softmax(-1)  # unpadded, alone
            assert lp == pytest.approx(float(want[tok]), abs=1e-4)
            assert len(top) == setting.logprobs
            assert [t for t, _ in top] == want.topk(setting.logprobs).indices.tolist()
            assert [v for _, v in top] == pytest.approx(want.topk(setting.logprobs).values.tolist(), abs=1e-4)
            if setting.method == "greedy":
                assert top[0][0] == tok  # greedy takes the most likely


def test_greedy_output_is_the_same_with_logprobs_and_without_penalties(model):
    prompts = [list(p) for p in PROMPTS]
    plain = generate(model, TOKENIZER, prompts, DecodingBlock(method="greedy"), max_new_tokens=8, seed=0, progress=False)
    asked = generate(model, TOKENIZER, prompts, DecodingBlock(method="greedy"), max_new_tokens=8, seed=0, progress=False,
                     sampling=[PromptSampling(method="greedy", logprobs=2)] * 2, on_logprobs=lambda *a: None)
    assert asked == plain


def test_a_large_presence_penalty_never_repeats_a_greedy_token(model):
    prompts = [list(p) for p in PROMPTS]
    plain = generate(model, TOKENIZER, prompts, DecodingBlock(method="greedy"), max_new_tokens=12, seed=0, progress=False)
    assert any(len(set(o)) < len(o) for o in plain), "the case should repeat tokens without the penalty"
    penalized = generate(model, TOKENIZER, prompts, DecodingBlock(method="greedy"), max_new_tokens=12, seed=0, progress=False,
                         sampling=[PromptSampling(method="greedy", presence_penalty=100.0)] * 2)
    assert all(len(set(o)) == len(o) for o in penalized), penalized


def test_penalized_sampling_draws_from_the_penalized_distribution(model):
    # Second tokens after the most common first token: softmax((logits - penalties) / T), the
    # penalties counting the one token generated so far (the prompt's tokens are not counted).
    temperature, presence, frequency = 0.8, 1.5, 0.7
    setting = PromptSampling(temperature=temperature, presence_penalty=presence, frequency_penalty=frequency)
    copies = 3000
    out = generate(model, TOKENIZER, [list(PROMPTS[0])] * copies, DecodingBlock(batch_tokens=65536), max_new_tokens=2, seed=11,
                   sampling=[setting] * copies, progress=False)
    firsts = torch.tensor([o[0] for o in out if o])
    first = int(firsts.mode().values)
    seconds = [o[1] if len(o) > 1 else EOS for o in out if o and o[0] == first]
    logits = _next_logits(model, [*PROMPTS[0], first])
    logits[first] -= presence + frequency  # generated once
    p = torch.softmax(logits / temperature, -1)
    counts = torch.bincount(torch.tensor(seconds), minlength=VOCAB).double()
    want = p * len(seconds)
    rare = want < 5
    want = torch.cat([want[~rare], want[rare].sum().reshape(1)])
    got = torch.cat([counts[~rare], counts[rare].sum().reshape(1)])
    chi2 = float(((got - want) ** 2 / want).sum())
    assert len(seconds) > 300 and stats.chi2.sf(chi2, df=len(want) - 1) > 1e-4, (want.tolist(), got.tolist())
    # without the penalty the first token would come back far more often: the test sees it
    plain = torch.softmax(_next_logits(model, [*PROMPTS[0], first]) / temperature, -1)
    assert abs(float(plain[first] - p[first])) * len(seconds) > 5 * (float(p[first]) * len(seconds)) ** 0.5


def test_settings_are_checked():
    with pytest.raises(GenerationError, match="logprobs"):
        PromptSampling(logprobs=-1)
    with pytest.raises(GenerationError, match="presence_penalty"):
        PromptSampling(presence_penalty=float("nan"))

"""The own sampler: per-prompt settings mean what they mean in transformers, draws follow the
warped softmax, and the streaming hook sees every token and can stop a prompt."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import chi2
from tiny import peaked_llama, prompts_of
from transformers import (
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from collapselab.config import DecodingBlock
from collapselab.generation import PromptSampling, generate


def test_first_token_frequencies_follow_the_warped_softmax(tokenizer):
    model = peaked_llama(tokenizer)
    prompt = prompts_of(tokenizer)[1]
    with torch.no_grad():
        logits = model(torch.tensor([prompt])).logits[:, -1].float()  # (1, V)
    n = 4000
    for temperature, top_k, top_p in ((2.0, 0, 1.0), (3.0, 12, 1.0), (2.5, 30, 0.8)):
        warp = LogitsProcessorList([TemperatureLogitsWarper(temperature)])
        if top_k:
            warp.append(TopKLogitsWarper(top_k))
        if top_p < 1:
            warp.append(TopPLogitsWarper(top_p))
        expected = warp(None, logits.clone()).softmax(-1)[0].numpy()
        decoding = DecodingBlock(method="sample", temperature=temperature, top_k=top_k, top_p=top_p)
        # n copies of one prompt: n independent streams, one draw each.
        outs = generate(model, tokenizer, [prompt] * n, decoding, max_new_tokens=1, seed=1, progress=False)
        counts = np.bincount([o[0] if o else tokenizer.eos_token_id for o in outs], minlength=len(expected))
        assert counts[expected == 0].sum() == 0  # nothing outside top-k / the nucleus
        cells = expected * n >= 5
        obs = np.append(counts[cells], counts[~cells].sum())
        exp = np.append(expected[cells] * n, expected[~cells].sum() * n)
        keep = exp > 0
        stat = (((obs - exp) ** 2)[keep] / exp[keep]).sum()
        assert cells.sum() >= 3  # a real distribution, not a near-greedy one
        assert stat < chi2.ppf(0.999, keep.sum() - 1), (temperature, top_k, top_p, stat)


def test_per_prompt_settings_equal_the_same_settings_for_the_whole_call(tokenizer):
    model = peaked_llama(tokenizer)
    prompts = prompts_of(tokenizer, 6)
    settings = [
        PromptSampling(method="greedy"),
        PromptSampling(temperature=0.7),
        PromptSampling(temperature=1.5, top_k=5),
        PromptSampling(top_p=0.8, max_new_tokens=3),
        PromptSampling(method="greedy", max_new_tokens=5),
        PromptSampling(temperature=2.0),
    ]
    mixed = generate(model, tokenizer, prompts, DecodingBlock(), max_new_tokens=9, seed=2, sampling=settings,
                     progress=False)
    for i, s in enumerate(settings):
        decoding = DecodingBlock(method=s.method, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
        whole = generate(model, tokenizer, prompts, decoding, max_new_tokens=s.max_new_tokens or 9, seed=2,
                         progress=False)
        assert mixed[i] == whole[i], i
    assert len(mixed[3]) <= 3 and len(mixed[4]) <= 5
    assert max(len(o) for o in mixed) > 5


def test_on_tokens_streams_every_token_and_stops_a_prompt(tokenizer):
    model = peaked_llama(tokenizer)
    prompts = prompts_of(tokenizer, 5)
    decoding = DecodingBlock(method="sample", temperature=1.5)
    seen: dict[int, list[int]] = {i: [] for i in range(len(prompts))}
    last: dict[int, int] = {i: 0 for i in range(len(prompts))}

    def listen(i, tokens, finished):
        seen[i] += tokens
        last[i] += finished

    full = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=4, on_tokens=listen, progress=False)
    assert [seen[i] for i in range(len(prompts))] == full
    assert set(last.values()) == {1}  # each prompt's last call says so, once
    assert len(full[2]) > 3

    def stop_prompt_2_after_3(i, tokens, finished):
        seen[i] += tokens
        return i == 2 and len(seen[i]) == 3

    seen = {i: [] for i in range(len(prompts))}
    stopped = generate(model, tokenizer, prompts, decoding, max_new_tokens=10, seed=4,
                       on_tokens=stop_prompt_2_after_3, progress=False)
    assert stopped[2] == full[2][:3] == seen[2]
    assert [o for i, o in enumerate(stopped) if i != 2] == [o for i, o in enumerate(full) if i != 2]


def test_top_p_removes_exactly_what_transformers_removes():
    from collapselab.generation.sampling import TopP

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 3000, generator=g) * torch.linspace(0.5, 8, 64)[:, None]  # flat to peaked rows
    logits[:8, :2000] = -float("inf")  # rows after a top-k cut
    logits[8, :1000] = -10.0  # a tied tail, removed whole
    for top_p in (0.001, 0.3, 0.9, 0.999):
        ours, theirs = TopP(top_p)(None, logits.clone()), TopPLogitsWarper(top_p)(None, logits.clone())
        assert torch.equal(torch.isinf(ours), torch.isinf(theirs)), top_p
        assert torch.equal(ours[~torch.isinf(ours)], theirs[~torch.isinf(theirs)])
        assert (~torch.isinf(ours)).sum(-1).min() >= 1
    assert (~torch.isinf(TopP(0.001)(None, logits.clone()))).sum(-1)[9:].max() == 1  # only the top token left
    # a tie straddling the cut keeps every tied token (transformers keeps an arbitrary share)
    tied = torch.tensor([0.0, 1.0, 2.0]).repeat(1, 1000)
    assert torch.equal(~torch.isinf(TopP(0.3)(None, tied)), tied == 2.0)

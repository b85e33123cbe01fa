"""Language-model metrics on the held-out human test set: perplexity and cross-entropy.

Perplexity is always computed on the same packed token stream: the test records are
consecutive slices of running human text (as the training records are), so their token
ids are concatenated as they are, with no separator added, and cut into non-overlapping
blocks of `seq_len` tokens; every token after the first of a block is a target. The current model and the reference model
(the arm's generation-0 model) are scored on identical targets and reported separately.
"""

from __future__ import annotations

import math

from collapselab import textio
from collapselab.batching import token_budget_batches
from collapselab.metrics.registry import EvalInputs, MetricValue, register_computed, register_metric


def pack_test_blocks(texts: list[str], tokenizer, seq_len: int) -> list[list[int]]:
    """Tokenize, concatenate and cut into full blocks of `seq_len` tokens (tail dropped)."""
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream.extend(ids)
    return [stream[i : i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]


def token_nll(
    model, blocks: list[list[int]], batch_tokens: int, device: str = "cpu", desc: str = "perplexity"
) -> tuple[float, int, list[float]]:
    """Sum of next-token negative log-likelihoods over all blocks, the target count, and
    per-block mean NLL. Blocks are full length, so no padding is involved."""
    import torch

    if not blocks:
        raise ValueError("no test blocks to score: the test set is shorter than one block")
    seq_len = len(blocks[0])
    bs = max(1, batch_tokens // seq_len)
    total, count, per_block = 0.0, 0, []
    model.eval()
    bar = textio.progress(len(blocks), desc, "block", leave=False)
    with torch.inference_mode():
        for i in range(0, len(blocks), bs):
            bar.update(min(bs, len(blocks) - i))
            x = torch.tensor(blocks[i : i + bs], dtype=torch.long, device=device)  # (B, T)
            logits = model(input_ids=x).logits[:, :-1].float()  # (B, T-1, V)
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1), reduction="none"
            ).view(x.size(0), -1)  # (B, T-1)
            total += nll.sum().item()
            count += nll.numel()
            per_block.extend(nll.mean(dim=1).tolist())
    bar.close()
    return total, count, per_block


def packed_test_blocks(inputs: EvalInputs) -> list[list[int]]:
    key = ("test_blocks", inputs.seq_len)
    if key not in inputs.extra:
        texts = [r.text for r in inputs.test if r.text]
        inputs.extra[key] = pack_test_blocks(texts, inputs.tokenizer, inputs.seq_len)
    return inputs.extra[key]


def _nll(inputs: EvalInputs, which: str) -> tuple[float, int, list[float]]:
    key = ("nll", which, inputs.seq_len)
    if key not in inputs.extra:
        model = inputs.model if which == "model" else inputs.generation0_model
        desc = "evaluate: test perplexity" + ("" if which == "model" else " (reference model)")
        inputs.extra[key] = token_nll(model, packed_test_blocks(inputs), inputs.batch_tokens, inputs.device, desc)
    return inputs.extra[key]


@register_metric("cross_entropy", task="lm", higher_is_better=False, version="1", needs=("model", "tokenizer"),
                 label="cross-entropy", unit="nats/token")
def cross_entropy(inputs: EvalInputs) -> MetricValue:
    """Mean next-token cross-entropy (nats) of the human test set under the current model."""
    total, count, per_block = _nll(inputs, "model")
    return MetricValue(total / count, per_block, {"tokens": count})


@register_metric("perplexity", task="lm", higher_is_better=False, version="1", needs=("model", "tokenizer"),
                 label="perplexity", unit="test, current model")
def perplexity(inputs: EvalInputs) -> MetricValue:
    """Perplexity of the human test set under the current model: exp(cross-entropy)."""
    total, count, per_block = _nll(inputs, "model")
    return MetricValue(math.exp(total / count), [math.exp(v) for v in per_block], {"tokens": count})


@register_metric(
    "reference_perplexity", task="lm", higher_is_better=False, version="1", needs=("generation0_model", "tokenizer"),
    label="reference perplexity", unit="test, generation-0 model",
)
def reference_perplexity(inputs: EvalInputs) -> MetricValue:
    """Perplexity of the human test set under the fixed reference (the arm's generation-0 model)."""
    total, count, per_block = _nll(inputs, "reference")
    return MetricValue(math.exp(total / count), [math.exp(v) for v in per_block], {"tokens": count})


# ---- synthetic data under the generation-0 model: the tail view ------------------------


def sequence_nll(model, tokenizer, texts: list[str], max_tokens: int, batch_tokens: int, device: str = "cpu") -> list[float]:
    """Mean next-token NLL of each text on its own, scored as `EOS text EOS`.

    The leading EOS gives the first token a context and the trailing one scores the end of
    the text, as in the packed test stream; an empty text scores its EOS alone. Texts are
    cut to `max_tokens` tokens. Sequences are sorted by length and right-padded in batches.
    """

    eos = tokenizer.eos_token_id
    seqs = [[eos, *ids[:max_tokens], eos] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    batches = token_budget_batches([len(q) for q in seqs], batch_tokens)  # ascending: the last sets the width
    out = [0.0] * len(seqs)
    for batch, sums, counts in padded_nll(model, seqs, batches, eos, device):
        per = sums / counts
        for row, i in enumerate(batch):
            out[i] = per[row].item()
    return out


def padded_nll(model, seqs: list[list[int]], batches: list[list[int]], pad: int, device: str):
    """Yield `(batch, sums, counts)` for each batch of indices into `seqs`: the token
    sequences right-padded with `pad` to the batch's longest, scored in one forward pass;
    `sums[r]` is row r's summed next-token NLL (fp32 tensor) and `counts[r]` its scored
    tokens (every token after the first). The shared core of the per-sequence scorers."""
    import torch

    model.eval()
    with torch.inference_mode():
        for batch in batches:
            width = max(len(seqs[i]) for i in batch)
            x = torch.full((len(batch), width), pad, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                x[row, : len(seqs[i])] = torch.tensor(seqs[i])
                mask[row, : len(seqs[i])] = 1
            x, mask = x.to(device), mask.to(device)
            logits = model(input_ids=x, attention_mask=mask).logits[:, :-1].float()  # (B, T-1, V)
            targets = x[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T-1)
            yield batch, nll.sum(dim=1), mask[:, 1:].sum(dim=1)


@register_metric(
    "synthetic_perplexity", task="any", higher_is_better=False, version="1", aggregation="distribution",
    label="synthetic perplexity (g0)", unit="synthetic, median per sequence, generation-0 model",
    needs=("synthetic", "generation0_model", "tokenizer"),
)
def synthetic_perplexity(inputs: EvalInputs) -> MetricValue:
    """Median per-sequence perplexity of this generation's synthetic texts under the generation-0 model."""
    import numpy as np

    from collapselab.metrics.diversity import synthetic_texts

    nll = sequence_nll(inputs.generation0_model, inputs.tokenizer, synthetic_texts(inputs), inputs.seq_len,
                       inputs.batch_tokens, inputs.device)
    ppl = np.exp(np.array(nll))
    details = {
        "mean": float(ppl.mean()), "median": float(np.median(ppl)),
        "p90": float(np.percentile(ppl, 90)), "p99": float(np.percentile(ppl, 99)),
        "scored_by": "generation-0 model", "max_tokens": inputs.seq_len,
    }
    return MetricValue(details["median"], ppl.tolist(), details)


register_computed(
    "unigram_perplexity", higher_is_better=False, version="1", label="unigram perplexity", unit="test, add-one unigram model",
    description="Perplexity of the human test blocks under an add-one unigram model of the human training tokens "
                "(generation 0 only: the floor of a model that learned no context).",
    computed_by="the lm task's baselines (tasks/lm.py)",
)

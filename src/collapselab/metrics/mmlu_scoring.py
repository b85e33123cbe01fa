"""The model side of MMLU: option log-likelihoods and greedy generation, causal or seq2seq.

A causal model scores `prompt + option` (right-padded batches); a seq2seq model reads the
prompt in its encoder and scores the option as decoder labels. When every option is one
token (the letters " A".." D" with most tokenizers) a single forward pass per question
gives all four scores from the distribution after the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence

from collapselab.batching import token_budget_batches
from collapselab.config import DecodingBlock


def _pad(rows: Sequence[Sequence[int]], pad_id: int, left: bool = False):
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(width - len(r), width) if left else slice(0, len(r))
        ids[i, sl] = torch.tensor(list(r), dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def option_logprobs(model, tokenizer, prompts: Sequence[str], options: Sequence[Sequence[str]], *, mean: bool,
                    batch_tokens: int, max_length: int, device: str = "cpu") -> list[list[float]]:
    """Log-likelihood of each option after its prompt: token sum, or per-token mean if `mean`."""
    import torch

    seq2seq = bool(model.config.is_encoder_decoder)
    ctx = tokenizer(list(prompts))["input_ids"]
    # One row per question when all its options are single tokens, else one per option:
    # (question, option or None for "all options at once", input ids, option ids)
    rows: list[tuple[int, int | None, list[int], list[int]]] = []
    for q, opts in enumerate(options):
        ids = [tokenizer(o, add_special_tokens=False)["input_ids"] for o in opts]
        if any(len(i) == 0 for i in ids):
            raise ValueError(f"question {q}: an option tokenizes to nothing: {opts}")
        if all(len(i) == 1 for i in ids):
            rows.append((q, None, ctx[q][-max_length:], [i[0] for i in ids]))
        else:
            for k, i in enumerate(ids):
                keep = max_length if seq2seq else max_length - len(i)
                rows.append((q, k, ctx[q][-keep:] if seq2seq else ctx[q][-keep:] + i, i))
    scores = [[0.0] * len(o) for o in options]
    pad = _pad_id(tokenizer)
    model.eval()
    with torch.inference_mode():
        for batch in token_budget_batches([len(r[2]) for r in rows], batch_tokens):
            ids, mask = _pad([rows[i][2] for i in batch], pad)
            ids, mask = ids.to(device), mask.to(device)
            if seq2seq:
                labels = [rows[i][3][:1] if rows[i][1] is None else rows[i][3] for i in batch]
                lab, lab_mask = _pad(labels, pad)
                lab = lab.masked_fill(lab_mask == 0, -100).to(device)
                logits = model(input_ids=ids, attention_mask=mask, labels=lab).logits  # (B, L, V)
            else:
                logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
            for b, i in enumerate(batch):
                q, k, seq, opt = rows[i]
                if k is None:  # all options are one token: read them after the prompt
                    pos = 0 if seq2seq else len(seq) - 1
                    scores[q] = logits[b, pos].float().log_softmax(-1)[opt].tolist()
                    continue
                n = len(opt)
                start = 0 if seq2seq else len(seq) - n - 1  # logits at t predict token t + 1
                lp = logits[b, start : start + n].float().log_softmax(-1)  # (n, V): only the positions scored
                token_lp = lp[torch.arange(n), torch.tensor(opt)]
                scores[q][k] = (token_lp.mean() if mean else token_lp.sum()).item()
    return scores


def greedy_generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, batch_tokens: int,
                    max_length: int, device: str = "cpu") -> list[str]:
    """Greedy continuation of each prompt (new text only, special tokens removed).

    Causal models decode through `collapselab.generation.generate` with the prompts' common
    prefixes shared (the header and a subject's few-shot examples are computed once per
    batch, not once per question); seq2seq models through `model.generate`.
    """
    import torch

    seq2seq = bool(model.config.is_encoder_decoder)
    keep = max_length if seq2seq else max_length - max_new_tokens
    ctx = [ids[-keep:] for ids in tokenizer(list(prompts))["input_ids"]]
    if not seq2seq:
        from collapselab.generation import common_prefix_lengths, generate

        outs = generate(model, tokenizer, ctx, DecodingBlock(method="greedy", batch_tokens=batch_tokens),
                        max_new_tokens=max_new_tokens, seed=0, prefix_lengths=common_prefix_lengths(ctx),
                        desc="mmlu", progress=False)
        return [tokenizer.decode(o, skip_special_tokens=True) for o in outs]
    pad = _pad_id(tokenizer)
    out = [""] * len(ctx)
    model.eval()
    with torch.inference_mode():
        for batch in token_budget_batches([len(c) + max_new_tokens for c in ctx], batch_tokens):
            ids, mask = _pad([ctx[i] for i in batch], pad)
            gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=pad, eos_token_id=tokenizer.eos_token_id)
            for b, i in enumerate(batch):
                out[i] = tokenizer.decode(gen[b], skip_special_tokens=True)
    return out

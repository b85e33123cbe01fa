"""The own decode loop for causal models: shared prefixes, left padding, a preallocated KV cache.

Why not model.generate: per step it re-concatenates the whole KV cache, draws a sample with
an exponential per vocabulary entry (torch.multinomial), keeps finished rows in the batch,
and reads every prompt from its first token even when a hundred prompts begin with the same
paragraph. Here:

- Prompts that begin with the same ids (their shareable prefix, given by the caller) form a
  group; each batch prefills its distinct prefixes once, then only the rows' own suffixes.
  With SDPA on a CPU the rows' caches hold their own tokens only and attention reads each
  prefix once per group (`cascade.py`), prefills run in chunks of similar length, and the
  token budget counts a prefix once per group; elsewhere each row gets a copy of its
  prefix's KV.
- A batch row is laid out as `[pad | prefix | pad | suffix | new tokens]`: the prefix region
  is as wide as the batch's longest prefix, the suffix region as its longest suffix, both
  left-padded. Pads are masked out of attention and positions count real tokens only, so
  each row computes what it would compute alone (greedy output is the same token for token).
- The cache is written in place; finished rows leave the batch as they accumulate.
- Sliding-window layers (Gemma 3) get their own mask, built from positions, not columns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch

from collapselab.batching import token_budget_batches
from collapselab.generation import cascade
from collapselab.generation.cache import preallocated_cache
from collapselab.generation.sampling import GenerationError, PromptSampling, RowSampler

PREFILL_CHUNK_TOKENS = 2048  # padded tokens per prefill call after shared prefixes: full matmuls

# on_tokens(prompt_index, new_token_ids, finished) -> True to stop that prompt now
TokenListener = Callable[[int, list[int], bool], "bool | None"]
# on_logprobs(prompt_index, token_id, logprob, [(token_id, logprob) of the k most likely])
LogprobListener = Callable[[int, int, float, list[tuple[int, float]]], None]


def shared_prefix_lengths(
    prompts: Sequence[Sequence[int]], prefix_lengths: Sequence[int], split: bool = False
) -> list[int]:
    """The prefix length each prompt is decoded with.

    A prefix keeps at least one token of its prompt out (the last prompt token must run
    through the model to give the first logits). When rows copy their prefix, a prefix no
    other prompt has is not worth a second forward call (0). Under split attention it is
    kept: its prompt joins a batch of grouped rows as a group of one, at the same cost.
    """
    eff = [min(p, len(x) - 1) for x, p in zip(prompts, prefix_lengths, strict=True)]
    if split:
        return eff
    counts = Counter(tuple(x[:p]) for x, p in zip(prompts, eff, strict=True) if p > 0)
    return [p if p > 0 and counts[tuple(x[:p])] > 1 else 0 for x, p in zip(prompts, eff, strict=True)]


def common_prefix_lengths(prompts: Sequence[Sequence[int]], min_tokens: int = 16) -> list[int]:
    """Shareable prefix lengths found from the prompts themselves, for callers that build
    prompts as whole texts (MMLU's few-shot prompts: header + a subject's shots + question).

    Prompts are sorted; runs of neighbours whose common prefix is at least `min_tokens` long
    share the common prefix of the whole run (so a run is one group, not one per pair).
    """
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    lengths = [0] * len(prompts)

    def lcp(a: Sequence[int], b: Sequence[int]) -> int:
        n = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            n += 1
        return n

    run: list[int] = [order[0]] if order else []
    shared = 0
    for prev, cur in zip(order, order[1:], strict=False):
        k = lcp(prompts[prev], prompts[cur])
        if k >= min_tokens:
            run.append(cur)
            shared = min(shared, k) if len(run) > 2 else k
            continue
        for i in run if len(run) > 1 else ():
            lengths[i] = shared
        run, shared = [cur], 0
    for i in run if len(run) > 1 else ():
        lengths[i] = shared
    return lengths


def splits_prefix_attention(model: Any) -> bool:
    """Whether this model reads shared prefixes once per group (else each row copies its prefix)."""
    return cascade.usable(model, _Masks(model).window)


def plan_batches(
    prompts: Sequence[Sequence[int]], eff: Sequence[int], budget: int, extra: int, split: bool = False
) -> list[list[int]]:
    """Batches of prompt indices: unshared prompts by length, then each prefix group together.

    split: the rows will not hold copies of their prefix (cascade.py). A batch then costs
    what `_decode_batch` allocates: each row its own columns (padded suffix + `extra`) and
    each distinct prefix its padded width once, so a batch holds many more rows.
    """
    group: dict[tuple, int] = {}
    gid = [group.setdefault(tuple(x[:p]), len(group)) if p else -1 for x, p in zip(prompts, eff, strict=True)]
    order = sorted(range(len(prompts)), key=lambda i: (eff[i], gid[i], len(prompts[i]) - eff[i]))
    if not split:
        return token_budget_batches([len(x) for x in prompts], budget, extra=extra, order=order)
    batches: list[list[int]] = []
    rows = width_s = width_p = 0
    groups: set[int] = set()
    for i in order:
        s, p = len(prompts[i]) - eff[i], eff[i]
        joined = groups | ({gid[i]} if p else set())
        if batches and (rows + 1) * (max(width_s, s) + extra) + len(joined) * max(width_p, p) <= budget:
            batches[-1].append(i)
            rows, width_s, width_p, groups = rows + 1, max(width_s, s), max(width_p, p), joined
        else:
            batches.append([i])
            rows, width_s, width_p, groups = 1, s, p, {gid[i]} if p else set()
    return batches


class _Masks:
    """Attention masks in the form the model's attention takes: bool for SDPA, additive for
    eager; a {"full_attention", "sliding_attention"} dict for models with sliding layers."""

    def __init__(self, model: Any):
        text = model.config.get_text_config(decoder=True)
        layer_types = getattr(text, "layer_types", None) or []
        self.window = getattr(text, "sliding_window", None)
        self.per_type = "sliding_attention" in layer_types and self.window is not None
        if not self.per_type and layer_types:
            self.window = None  # no layer slides: the window setting is unused
        self.additive = text._attn_implementation == "eager"
        self.dtype = model.dtype

    def _form(self, full: torch.Tensor, pos_q: torch.Tensor, pos_k: torch.Tensor) -> Any:
        """full: (B, Q, K) bool; pos_q (B, Q), pos_k (B, K) positions for the window."""
        if self.window is None:
            return self._cast(full)
        slide = full & ((pos_q[:, :, None] - pos_k[:, None, :]) < self.window)
        if not self.per_type:
            return self._cast(slide)
        return {"full_attention": self._cast(full), "sliding_attention": self._cast(slide)}

    def _cast(self, m: torch.Tensor) -> torch.Tensor:
        m = m[:, None]  # (B, 1, Q, K): one mask for every head
        if not self.additive:
            return m
        return torch.zeros(m.shape, dtype=self.dtype, device=m.device).masked_fill_(~m, torch.finfo(self.dtype).min)

    def prefill(self, key_ok: torch.Tensor, key_pos: torch.Tensor, start: int, end: int) -> Any:
        """Queries are columns [start, end), keys [0, end); None where SDPA's causal kernel will do."""
        ok = key_ok[:, :end]
        if start == 0 and self.window is None and bool(ok.all()):
            return None
        q = torch.arange(start, end, device=ok.device)[:, None]
        k = torch.arange(end, device=ok.device)[None, :]
        # Causal, never onto a pad key; a pad query sees itself so no row is empty (an
        # all-masked row gives NaN, and NaN values would leak through 0 weights).
        full = ((k <= q)[None] & ok[:, None, :]) | (k == q)[None]
        return self._form(full, key_pos[:, start:end], key_pos[:, :end])

    def step(self, key_ok: torch.Tensor, key_pos: torch.Tensor, length: int, padded: bool) -> Any:
        """The mask of one decode step over keys [0, length); None when nothing is masked."""
        if not padded and self.window is None:
            return None
        return self._form(key_ok[:, None, :length], key_pos[:, length - 1 : length], key_pos[:, :length])


def decode_batch(model: Any, prompts: Sequence[Sequence[int]], eff: Sequence[int], *args: Any, **kwargs: Any) -> list[list[int]]:
    """Continue one batch of causal prompts; returns per prompt its new tokens, EOS excluded.

    After shared prefixes, on a CPU, attention reads each prefix once per group
    (cascade.py) and a row's cache holds its own columns only; elsewhere each row's cache
    starts with a copy of its prefix's KV. See `_decode_batch` for the arguments.
    """
    masks = _Masks(model)
    split = any(eff) and cascade.usable(model, masks.window)
    with cascade.attention_of(model) if split else nullcontext():
        return _decode_batch(model, prompts, eff, *args, masks=masks, split=split, **kwargs)


def _decode_batch(
    model: Any,
    prompts: Sequence[Sequence[int]],
    eff: Sequence[int],
    settings: Sequence[PromptSampling],
    keys: np.ndarray,
    *,
    eos_id: int,
    repetition_penalty: float,
    max_new_tokens: int,
    indices: Sequence[int],
    on_tokens: TokenListener | None,
    masks: _Masks,
    split: bool,
    on_logprobs: LogprobListener | None = None,
) -> list[list[int]]:
    """Continue one batch of causal prompts; returns per prompt its new tokens, EOS excluded.

    Args:
        prompts, eff: The batch's prompts and the prefix length each shares (0: none).
        settings: Each prompt's decoding settings; `max_new_tokens` is the default limit.
        keys: Each prompt's random-stream key.
        indices: Each prompt's index in the caller's list (what `on_tokens` is told).
        on_logprobs: Told each new token's log-probability (and the top `settings[i].logprobs`)
            of the prompts whose setting asks, before `on_tokens` is told the token.
        split: Attend to the shared prefixes through `cascade.SharedPrefix`: the rows'
            cache starts at column `own`, after the prefix region.
    """
    device = model.device
    n = len(prompts)
    # The largest groups first: cascade.py reads runs of consecutive groups of similar size.
    sizes = Counter(tuple(x[:p]) for x, p in zip(prompts, eff, strict=True) if p)
    prefixes = {key: i for i, (key, _) in enumerate(sizes.most_common())}
    group = [prefixes[tuple(x[:p])] if p else -1 for x, p in zip(prompts, eff, strict=True)]
    width_p = max((len(p) for p in prefixes), default=0)
    width_s = max(len(x) - p for x, p in zip(prompts, eff, strict=True))
    width = width_p + width_s
    limits = [s.max_new_tokens or max_new_tokens for s in settings]
    total = width + max(limits)
    # Pad slots hold the prompt's first token, not pad_id: they are masked out of attention
    # either way, and the repetition penalty, which reads ids as the history, then sees
    # exactly the tokens this prompt would show alone.
    ids_rows, ok_rows = [], []
    for x, p in zip(prompts, eff, strict=True):
        pre, suf = list(x[:p]), list(x[p:])
        pad_p, pad_s = width_p - len(pre), width_s - len(suf)
        ids_rows.append([x[0]] * pad_p + pre + [x[0]] * pad_s + suf)
        ok_rows.append([False] * pad_p + [True] * len(pre) + [False] * pad_s + [True] * len(suf))
    ids = torch.zeros((n, total), dtype=torch.long, device=device)  # (B, T) prompt | new
    key_ok = torch.zeros((n, total), dtype=torch.bool, device=device)  # (B, T) real tokens
    ids[:, :width] = torch.tensor(ids_rows, device=device)
    key_ok[:, :width] = torch.tensor(ok_rows, device=device)
    key_pos = torch.zeros((n, total), dtype=torch.long, device=device)  # (B, T) positions
    key_pos[:, :width] = (key_ok[:, :width].long().cumsum(-1) - 1).clamp(min=0)
    own = width_p if split else 0  # the first column the rows' cache holds
    masks.additive |= split  # the flash kernel takes additive masks
    padded = not bool(key_ok[:, own:width].all())
    shared: cascade.SharedPrefix | None = None

    cache = preallocated_cache(model, total - own)
    if prefixes:  # each distinct prefix once, then its KV shared by the rows of its group
        pre_ids = torch.tensor([[p[0]] * (width_p - len(p)) + list(p) for p in prefixes], device=device)
        pre_ok = torch.tensor([[False] * (width_p - len(p)) + [True] * len(p) for p in prefixes], device=device)
        pre_pos = (pre_ok.long().cumsum(-1) - 1).clamp(min=0)
        pre_cache = preallocated_cache(model, width_p)
        rows_group = torch.tensor(group, device=device)
        if split:
            _prefill_in_chunks(model, pre_ids, pre_ok, pre_pos, pre_cache, masks)
            shared = cascade.SharedPrefix(pre_cache, pre_ok, rows_group)
        else:
            model(
                input_ids=pre_ids,
                attention_mask=masks.prefill(pre_ok, pre_pos, 0, width_p),
                position_ids=pre_pos,
                cache=pre_cache,
                use_cache=True,
                logits_to_keep=1,
            )
            _check_written(model, pre_cache)
            for layer, pre_layer in zip(cache.layers, pre_cache.layers, strict=True):
                layer.seed_from(pre_layer, rows_group)
        del pre_cache
    extra = {} if shared is None else {"shared_prefix": shared}  # reaches the attention function
    if shared is not None or not prefixes:  # the rows' cache starts empty: prefill in chunks
        cols = slice(width_p, width)
        logits = _prefill_in_chunks(model, ids[:, cols], key_ok[:, cols], key_pos[:, cols], cache, masks, shared)
    else:  # after prefix copies: one pass over the suffixes
        logits = model(
            input_ids=ids[:, width_p:width],
            attention_mask=masks.prefill(key_ok, key_pos, width_p, width),
            position_ids=key_pos[:, width_p:width],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]  # (B, V)

    sampler = RowSampler(settings, keys, repetition_penalty)
    n_new = max(limits)
    new = torch.full((n, n_new), eos_id, dtype=torch.long, device=device)  # (B, N)
    out_len = torch.full((n,), n_new, dtype=torch.long)  # where each row's output ends
    rows = torch.arange(n, device=device)  # original row of each active row
    limit = torch.tensor(limits, device=device)
    next_pos = key_ok[:, :width].sum(-1, keepdim=True)  # (B, 1) position of the next token
    finished = torch.zeros(n, dtype=torch.bool, device=device)
    for t in range(n_new):
        token = sampler(ids[:, : width + t], logits, t)  # (B,)
        new[rows, t] = token
        ids[:, width + t] = token
        key_ok[:, width + t] = True
        key_pos[:, width + t] = next_pos[:, 0]
        is_eos = token == eos_id
        done = (is_eos | (limit <= t + 1)) & ~finished
        if on_logprobs is not None:
            _tell_logprobs(on_logprobs, indices, settings, rows, token, logits, is_eos | finished)
        if on_tokens is not None:
            done = _tell(on_tokens, indices, rows, token, is_eos, done, finished)
        if bool(done.any()):
            out_len[rows[done].cpu()] = torch.where(is_eos[done], t, t + 1).cpu()
            finished |= done
        if t == n_new - 1 or bool(finished.all()):
            break
        if int(finished.sum()) * 4 >= len(rows):
            # A quarter of the rows has finished: drop them so no step is spent on them.
            # Finished rows still in the batch decode on; their outputs end at out_len.
            keep = (~finished).nonzero().squeeze(-1)
            cache.batch_select_indices(keep)
            ids, key_ok, key_pos, rows, next_pos, token, limit = (
                x[keep] for x in (ids, key_ok, key_pos, rows, next_pos, token, limit)
            )
            sampler.keep(keep.cpu().numpy())
            if shared is not None:
                shared.keep(keep)
            finished = finished[keep]
        logits = model(
            input_ids=token[:, None],
            attention_mask=masks.step(key_ok[:, own:], key_pos[:, own:], width + t + 1 - own, padded),
            position_ids=next_pos,
            cache=cache,
            use_cache=True,
            **extra,
        ).logits[:, -1]
        next_pos = next_pos + 1
    lengths = out_len.tolist()
    return [row[:k] for row, k in zip(new.tolist(), lengths, strict=True)]


def _prefill_in_chunks(
    model: Any,
    ids: torch.Tensor,
    ok: torch.Tensor,
    pos: torch.Tensor,
    cache: Any,
    masks: _Masks,
    shared: cascade.SharedPrefix | None = None,
) -> torch.Tensor:
    """Prefill left-padded rows in chunks of rows of similar length (questions of 8 and 40
    tokens are not both padded to 40), each chunk up to PREFILL_CHUNK_TOKENS padded tokens;
    returns the last position's logits (B, V).

    ids, ok, pos: (B, W) the columns to prefill. Each chunk runs in a cache of its own width,
    then lands in `cache` right-aligned at column W, the columns before it zero (and masked).
    shared: the prefixes the rows read (their cache then holds the rows' own columns only).
    """
    n, width = ok.shape
    lengths = ok.sum(-1).tolist()
    logits = None
    for chunk in token_budget_batches(lengths, PREFILL_CHUNK_TOKENS):
        part = torch.tensor(chunk, device=ids.device)
        w = max(lengths[i] for i in chunk)
        cols = slice(width - w, width)
        part_cache = preallocated_cache(model, w)
        out = model(
            input_ids=ids[part, cols],
            attention_mask=masks.prefill(ok[part, cols], pos[part, cols], 0, w),
            position_ids=pos[part, cols],
            cache=part_cache,
            use_cache=True,
            logits_to_keep=1,
            **({} if shared is None else {"shared_prefix": shared.for_rows(part)}),
        ).logits[:, -1]
        _check_written(model, part_cache)
        if logits is None:
            logits = out.new_empty((n, out.shape[-1]))
        logits[part] = out
        for layer, part_layer in zip(cache.layers, part_cache.layers, strict=True):
            layer.place(part_layer, part, n, width)
    return logits


def _check_written(model: Any, cache: Any) -> None:
    """Fail if a prefill left its (empty) cache empty: a forward that does not take the
    `cache` argument (transformers before 5.24, or a model class of its own) swallows it into
    **kwargs, and every decode step would then attend to nothing but itself."""
    if cache.get_seq_length() == 0:
        raise GenerationError(f"{type(model).__name__}.forward did not fill the `cache` it was given; collapselab needs transformers >= 5.24")


def _tell_logprobs(
    on_logprobs: LogprobListener,
    indices: Sequence[int],
    settings: Sequence[PromptSampling],
    rows: torch.Tensor,
    token: torch.Tensor,
    logits: torch.Tensor,
    skip: torch.Tensor,
) -> None:
    """Each new token's log-probability under the model (the raw logits it was drawn from),
    and the k most likely tokens', for the running rows whose setting asks for them."""
    want = [(a, r) for a, (r, s) in enumerate(zip(rows.tolist(), skip.tolist(), strict=True))
            if not s and settings[r].logprobs is not None]
    if not want:
        return
    at = torch.tensor([a for a, _ in want], device=logits.device)
    logprobs = logits[at].float().log_softmax(-1)  # (W, V)
    chosen = token[at]
    for j, (_, r) in enumerate(want):
        k = settings[r].logprobs
        top = logprobs[j].topk(min(k, logprobs.shape[-1])) if k else None
        alternatives = list(zip(top.indices.tolist(), top.values.tolist(), strict=True)) if top is not None else []
        on_logprobs(indices[r], int(chosen[j]), float(logprobs[j, chosen[j]]), alternatives)


def _tell(
    on_tokens: TokenListener,
    indices: Sequence[int],
    rows: torch.Tensor,
    token: torch.Tensor,
    is_eos: torch.Tensor,
    done: torch.Tensor,
    finished: torch.Tensor,
) -> torch.Tensor:
    """Give each running prompt its new token; a listener that answers True stops it."""
    done = done.clone()
    for a, (r, tok, eos, d, f) in enumerate(
        zip(rows.tolist(), token.tolist(), is_eos.tolist(), done.tolist(), finished.tolist(), strict=True)
    ):
        if f:
            continue
        if on_tokens(indices[r], [] if eos else [tok], d) and not d:
            done[a] = True
    return done

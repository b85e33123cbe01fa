"""Attention to a shared prefix that is read once per group, not once per row.

With the prefix's KV copied into every row, a decode step reads a 200-token SQuAD context
nine times for nine questions: at batch 64 on SmolLM2 the KV reads then outweigh the weights.
Here each row's cache holds only its own tokens (question + answer); attention runs in two
parts and is merged exactly:

- own part: the row's queries over its own keys (causal, pads masked);
- prefix part: all queries of a group, stacked as one long query block, over the group's
  prefix keys (every prefix token precedes every query: no causal mask, pads masked); one
  flash call per run of groups of similar size (`runs`), so small groups are not padded to
  the largest one's rows;
- merge: softmax over the union is the two partial outputs weighted by their log-sum-exps.

Both parts go through the same CPU flash-attention kernel SDPA uses, which also returns the
log-sum-exp. The result equals attention over the concatenated keys up to float rounding;
the tests check greedy output equal to unshared decoding token for token.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface

NAME = "collapselab_shared_prefix"


def usable(model: Any, window: int | None) -> bool:
    """Whether a model decodes through the split attention: SDPA on a CPU, no sliding window
    (a window would cut into the prefix by position), plain attention (no softcap)."""
    text = model.config.get_text_config(decoder=True)
    return (
        model.device.type == "cpu"
        and text._attn_implementation == "sdpa"
        and window is None
        and getattr(text, "attn_logit_softcapping", None) is None
    )


def _flash(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, causal: bool, scale):
    """(output, log-sum-exp) of attention; mask additive, of the query's dtype."""
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, 0.0, causal, attn_mask=mask, scale=scale)


# What a flash call costs besides its queries, in queries: per call, and per (group, head) problem.
CALL_QUERIES, GROUP_QUERIES = 64, 8


def runs(counts: list[int], per_row: int) -> list[tuple[int, int, int]]:
    """How the prefix part splits into flash calls: runs [start, end) of consecutive groups,
    each run's query block as wide as its largest group (`width` rows; smaller groups pad
    with zero queries). One block as wide as the largest group would pad a batch with one
    nine-question context and thirty one-question ones to 9 rows each; per-group calls
    would pay each call's fixed cost. The runs minimise the queries computed plus those
    costs (an exact partition, by dynamic programming); groups with no rows are skipped.

    counts: rows per group (prefix row); per_row: queries per row (heads per KV head x Q).
    """
    n = len(counts)
    best = [0.0] + [float("inf")] * n  # best[i]: groups [0, i) placed
    back: list[tuple[int, int] | None] = [None] * (n + 1)
    for i in range(1, n + 1):
        if counts[i - 1] == 0:  # an empty group needs no call
            best[i], back[i] = best[i - 1], None
        width = 0
        for j in range(i - 1, -1, -1):
            width = max(width, counts[j])
            cost = best[j] + (i - j) * (width * per_row + GROUP_QUERIES) + CALL_QUERIES
            if cost < best[i]:
                best[i], back[i] = cost, (j, width)
    out, i = [], n
    while i > 0:
        if back[i] is None:
            i -= 1
            continue
        j, width = back[i]
        out.append((j, i, width))
        i = j
    return out[::-1]


class SharedPrefix:
    """The prefixes' KV, once per group, and which rows read which prefix.

    Args:
        cache: The prefix pass's cache (one row per distinct prefix, left-padded to width P).
        prefix_ok: (G, P) bool, the prefixes' real tokens.
        group: (B,) each batch row's prefix row, -1 for a row without a shared prefix.
    """

    def __init__(self, cache: Any, prefix_ok: torch.Tensor, group: torch.Tensor):
        self.keys = [layer.keys for layer in cache.layers]  # (G, Hk, P, D) per layer
        self.values = [layer.values for layer in cache.layers]
        dtype = self.keys[0].dtype
        mask = torch.zeros(prefix_ok.shape, dtype=dtype, device=prefix_ok.device)
        self.mask = mask.masked_fill_(~prefix_ok, torch.finfo(dtype).min)[:, None, None, :]  # (G, 1, 1, P)
        self._place(group)

    def _place(self, group: torch.Tensor) -> None:
        """Each grouped row's slot in the stacked query blocks: its run of groups, its group
        there, its rank in the group (`runs`)."""
        self.group = group
        self.rows = (group >= 0).nonzero().squeeze(-1)  # rows that read a prefix
        self.all_rows = len(self.rows) == len(group)
        g = group[self.rows].tolist()
        rank, seen = [], [0] * self.mask.shape[0]
        for x in g:
            rank.append(seen[x])
            seen[x] += 1
        self.counts = seen
        self._g, self._rank = g, rank
        self._plans: dict[int, list] = {}

    def _runs(self, per_row: int) -> list:
        """The flash calls of the prefix part, for `per_row` queries per row: per run of
        groups, (first group, end, its rows' indices among the grouped rows, their group in
        the run, their rank, the run's width)."""
        if per_row not in self._plans:
            plan = []
            for start, end, width in runs(self.counts, per_row):
                idx = [i for i, x in enumerate(self._g) if start <= x < end]
                plan.append((start, end, *(torch.tensor(v, dtype=torch.long, device=self.group.device) for v in (
                    idx, [self._g[i] - start for i in idx], [self._rank[i] for i in idx])), width))
            self._plans[per_row] = plan
        return self._plans[per_row]

    def for_rows(self, rows: torch.Tensor) -> SharedPrefix:
        """The same prefixes, read by the batch rows `rows` only (a chunk of the batch)."""
        part = copy.copy(self)
        part._place(self.group[rows])
        return part

    def keep(self, keep: torch.Tensor) -> None:
        """Rows `keep` stay in the batch (finished rows left it)."""
        self._place(self.group[keep])

    def merge(self, layer: int, query: torch.Tensor, out: torch.Tensor, lse: torch.Tensor, scale) -> torch.Tensor:
        """Attention over [prefix | own keys], from the own part's output and log-sum-exp.

        query, out: (B, H, Q, D); lse: (B, H, Q).
        """
        if not len(self.rows):
            return out
        pk, pv = self.keys[layer], self.values[layer]
        hk, d = pk.shape[1], pk.shape[-1]
        n, h, q_len, _ = (len(self.rows), *query.shape[1:])
        rep = h // hk
        q = query if self.all_rows else query[self.rows]
        plan = self._runs(rep * q_len)
        if len(plan) > 1:
            pre_o, pre_l = q.new_empty((n, h, q_len, d)), q.new_empty((n, h, q_len))
        for start, end, idx, slot_g, slot_j, width in plan:
            n_groups = end - start
            block = q.new_zeros((n_groups, width, h, q_len, d))  # (G, rows, H, Q, D)
            block[slot_g, slot_j] = q if len(plan) == 1 else q[idx]
            block = block.view(n_groups, width, hk, rep, q_len, d).permute(0, 2, 1, 3, 4, 5)
            run_o, run_l = _flash(block.reshape(n_groups, hk, -1, d), pk[start:end], pv[start:end], self.mask[start:end], False, scale)
            run_o = run_o.view(n_groups, hk, width, rep, q_len, d).permute(0, 2, 1, 3, 4, 5)
            run_o = run_o.reshape(n_groups, width, h, q_len, d)[slot_g, slot_j]  # (N, H, Q, D)
            run_l = run_l.view(n_groups, hk, width, rep, q_len).permute(0, 2, 1, 3, 4)
            run_l = run_l.reshape(n_groups, width, h, q_len)[slot_g, slot_j]  # (N, H, Q)
            if len(plan) == 1:
                pre_o, pre_l = run_o, run_l
            else:
                pre_o[idx], pre_l[idx] = run_o, run_l
        own_o, own_l = (out, lse) if self.all_rows else (out[self.rows], lse[self.rows])
        top = torch.maximum(pre_l, own_l)
        w_pre, w_own = (pre_l - top).exp_(), (own_l - top).exp_()
        merged = (pre_o * w_pre[..., None] + own_o * w_own[..., None]) / (w_pre + w_own)[..., None]
        if self.all_rows:
            return merged
        out = out.clone()
        out[self.rows] = merged
        return out


def shared_prefix_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    shared_prefix: SharedPrefix | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The model's attention while decoding after shared prefixes (an AttentionInterface).

    key, value: the rows' own cache. attention_mask: additive (B, 1, Q, K) over the own keys,
    or None: causal when Q > 1, nothing masked for one query.
    """
    b, h, q_len, d = query.shape
    rep = h // key.shape[1]
    if q_len == 1 and rep > 1:  # one query: its heads' groups become the query axis, no KV copy
        out, lse = _flash(query.reshape(b, key.shape[1], rep, d), key, value, attention_mask, False, scaling)
    else:
        k, v = (key, value) if rep == 1 else (key.repeat_interleave(rep, 1), value.repeat_interleave(rep, 1))
        out, lse = _flash(query, k, v, attention_mask, attention_mask is None and q_len > 1, scaling)
    out, lse = out.reshape(b, h, q_len, d), lse.reshape(b, h, q_len)
    if shared_prefix is not None:
        out = shared_prefix.merge(module.layer_idx, query, out, lse, scaling)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, shared_prefix_attention)


@contextmanager
def attention_of(model: Any):
    """The model attends through `shared_prefix_attention` inside the block."""
    text = model.config.get_text_config(decoder=True)
    before = text._attn_implementation
    text._attn_implementation = NAME
    try:
        yield
    finally:
        text._attn_implementation = before

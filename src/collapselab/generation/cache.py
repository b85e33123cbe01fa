"""The decode loop's KV cache: buffers allocated once, written in place, seeded from shared prefixes."""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


class PreallocatedLayer(DynamicLayer):
    """A KV cache layer with its (B, H, max_len, D) buffers allocated once and written in place.

    DynamicLayer concatenates, copying the whole cache every step; StaticLayer returns the
    full max_len buffers, so attention reads empty slots. This one returns views of the
    filled part, so each step reads exactly the cached tokens and copies nothing.
    """

    def __init__(self, max_len: int):
        super().__init__()
        self.max_len = max_len
        self.length = 0

    def _allocate(self, like_k: torch.Tensor, like_v: torch.Tensor, rows: int, zero: bool = False) -> None:
        """(rows, H, max_len, D) buffers of `like_k`/`like_v`'s heads, dim, dtype and device."""
        self.dtype, self.device = like_k.dtype, like_k.device
        new = torch.Tensor.new_zeros if zero else torch.Tensor.new_empty
        self.k_buf = new(like_k, (rows, like_k.shape[1], self.max_len, like_k.shape[-1]))
        self.v_buf = new(like_v, (rows, like_v.shape[1], self.max_len, like_v.shape[-1]))
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self._allocate(key_states, value_states, key_states.shape[0])

    def seed_from(self, prefix: PreallocatedLayer, rows: torch.Tensor) -> None:
        """Start from shared prefixes: row r's first columns are a copy of prefix row `rows[r]`.

        `rows[r] == -1` marks a row without a shared prefix: its prefix columns are zeros
        (masked out of attention; zeros, not garbage, because a NaN would leak through a
        zero attention weight).
        """
        width = prefix.length
        pk, pv = prefix.k_buf[:, :, :width], prefix.v_buf[:, :, :width]  # (G, H, P, D)
        pk = torch.cat([pk, pk.new_zeros((1, *pk.shape[1:]))])  # row G: the zero prefix
        pv = torch.cat([pv, pv.new_zeros((1, *pv.shape[1:]))])
        src = torch.where(rows < 0, pk.shape[0] - 1, rows)
        self._allocate(pk, pv, len(rows))
        self.k_buf[:, :, :width] = pk[src]
        self.v_buf[:, :, :width] = pv[src]
        self.length = width

    def place(self, part: PreallocatedLayer, rows: torch.Tensor, n_rows: int, width: int) -> None:
        """Rows `rows` take `part`'s columns, right-aligned to end at column `width`.

        The first call allocates the buffers for `n_rows` rows, zeroed: columns a row does
        not fill stay zero (masked, and never NaN through a zero attention weight).
        """
        w = part.length
        if not self.is_initialized:
            self._allocate(part.k_buf, part.v_buf, n_rows, zero=True)
        self.k_buf[rows, :, width - w : width] = part.k_buf[:, :, :w]
        self.v_buf[rows, :, width - w : width] = part.v_buf[:, :, :w]
        self.length = width
        self.keys, self.values = self.k_buf[:, :, :width], self.v_buf[:, :, :width]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
    ):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self.length + key_states.shape[-2]
        self.k_buf[:, :, self.length : end] = key_states
        self.v_buf[:, :, self.length : end] = value_states
        self.length = end
        self.keys, self.values = self.k_buf[:, :, :end], self.v_buf[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.k_buf, self.v_buf = self.k_buf[indices], self.v_buf[indices]
        self.keys, self.values = self.k_buf[:, :, : self.length], self.v_buf[:, :, : self.length]


def preallocated_cache(model: Any, max_len: int) -> Any:
    """A transformers Cache of one PreallocatedLayer per decoder layer."""
    from transformers import Cache

    n_layers = model.config.get_text_config(decoder=True).num_hidden_layers
    return Cache(layers=[PreallocatedLayer(max_len) for _ in range(n_layers)])

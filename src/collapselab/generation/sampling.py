"""Choosing the next token of every row: per-prompt settings, transformers' own warpers.

Rows of one batch may carry different settings (a chat server decodes requests with
different temperatures together). Rows are grouped by setting and each group goes through
transformers' TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper, in that
order, so each knob means exactly what it means in `model.generate` (top-p through `TopP`,
the same rule without the full argsort on a CPU). A sampled token is one uniform per row
(its prompt's own stream, `streams.py`) pushed through the CDF.

OpenAI's presence and frequency penalties (a chat server's requests) come first, on the
scores: `logit[t] -= presence * [t was generated] + frequency * (times t was generated)`,
counting the tokens this prompt generated so far (not its prompt), as OpenAI and vLLM do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from collapselab.errors import CollapselabError
from collapselab.generation.streams import uniforms


class GenerationError(CollapselabError):
    """Bad arguments to `generate` (a setting out of range, a backend that is not there)."""


@dataclass(frozen=True)
class PromptSampling:
    """One prompt's own decoding settings, replacing the call's `decoding` for that prompt.

    Attributes:
        method: "sample" or "greedy".
        temperature: Sampling temperature (> 0).
        top_p: Nucleus mass in (0, 1]; 1 = off.
        top_k: Keep the k most likely tokens; 0 = off.
        max_new_tokens: Most new tokens for this prompt; None = the call's `max_new_tokens`.
        presence_penalty: Subtracted from the score of every token generated so far (0 = off).
        frequency_penalty: Subtracted once per time a token was generated so far (0 = off).
        logprobs: None: none; k >= 0: `generate`'s `on_logprobs` gets each new token's
            log-probability under the model (before penalties, temperature, top-k, top-p) and
            the k most likely tokens' (greedy and sampling alike).
    """

    method: Literal["sample", "greedy"] = "sample"
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None

    def __post_init__(self) -> None:
        if self.method not in ("sample", "greedy"):
            raise GenerationError(f"PromptSampling.method: 'sample' or 'greedy', not {self.method!r}")
        if not self.temperature > 0:
            raise GenerationError(f"PromptSampling.temperature must be > 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"PromptSampling.top_p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise GenerationError(f"PromptSampling.top_k must be >= 0, not {self.top_k}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise GenerationError(f"PromptSampling.max_new_tokens must be >= 1, not {self.max_new_tokens}")
        for name in ("presence_penalty", "frequency_penalty"):
            if not np.isfinite(getattr(self, name)):
                raise GenerationError(f"PromptSampling.{name} must be a finite number, not {getattr(self, name)}")
        if self.logprobs is not None and self.logprobs < 0:
            raise GenerationError(f"PromptSampling.logprobs must be None or >= 0, not {self.logprobs}")

    @property
    def warp_key(self) -> tuple:
        """What decides the token given the scores (max_new_tokens and logprobs do not)."""
        penalties = (self.presence_penalty, self.frequency_penalty)
        if self.method == "greedy":
            return ("greedy", *penalties)
        return ("sample", self.temperature, self.top_k, self.top_p, *penalties)

    @property
    def penalized(self) -> bool:
        return bool(self.presence_penalty or self.frequency_penalty)


def output_penalties(scores: torch.Tensor, generated: torch.Tensor, presence: float, frequency: float) -> torch.Tensor:
    """(B, V) scores less OpenAI's presence and frequency penalties for the (B, N) tokens each
    row generated so far."""
    if generated.shape[1] == 0:
        return scores
    counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))  # (B, V)
    return scores - frequency * counts - presence * (counts > 0).to(scores.dtype)


def warpers(sampling: PromptSampling) -> Any:
    """transformers' warpers for one setting, in transformers' order: temperature, top-k, top-p."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper

    procs = LogitsProcessorList()
    if sampling.method == "sample":
        if sampling.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(sampling.temperature))
        if sampling.top_k > 0:
            procs.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            procs.append(TopP(sampling.top_p))
    return procs


class TopP:
    """transformers' TopPLogitsWarper (min_tokens_to_keep 1), without its argsort.

    transformers sorts every row with its indices, takes the softmax of the sorted scores,
    and removes the sorted prefix whose cumulative probability is <= 1 - top_p. That
    prefix only needs the sorted values: it is every score below the first kept value.
    Sorting values alone (NumPy on a CPU) is about 10x faster than torch.sort with
    indices, which took a third of the quickstart model's decode time in a one-thread
    profile (about a tenth of it at 2 threads: benchmarks/RESULTS.md). The softmax and the
    cumulative sum run on the same sorted values, so the count removed is transformers'
    to the bit; a tie straddling the cut keeps all the tied tokens, where transformers'
    unstable sort keeps an arbitrary share of them.
    """

    def __init__(self, top_p: float):
        self.top_p = float(top_p)

    def __call__(self, input_ids: Any, scores: torch.Tensor) -> torch.Tensor:
        if scores.device.type == "cpu":
            values = torch.from_numpy(np.sort(scores.detach().numpy(), axis=-1))
        else:
            values = torch.sort(scores, dim=-1).values
        cumulative = values.softmax(dim=-1).cumsum(dim=-1)
        removed = (cumulative <= 1 - self.top_p).sum(dim=-1, keepdim=True).clamp_(max=scores.shape[-1] - 1)
        return scores.masked_fill(scores < values.gather(-1, removed), -float("inf"))


def draw(scores: torch.Tensor, u: np.ndarray) -> torch.Tensor:
    """Sample one token per row of (B, V) warped scores from uniforms u (B,) through the CDF."""
    cdf = scores.softmax(-1).cumsum(-1)  # (B, V)
    total = cdf[:, -1:]
    point = torch.from_numpy(u).to(cdf.dtype).to(cdf.device)[:, None] * total
    # Strictly below the total, so the first cdf > point is a token of non-zero probability.
    point = torch.minimum(point, torch.nextafter(total, torch.zeros_like(total)))
    return torch.searchsorted(cdf, point, right=True).squeeze(-1)


class RowSampler:
    """The next token of each active row of a batch; rows keep their setting when others leave.

    Args:
        settings: One PromptSampling per row of the batch.
        keys: The rows' stream keys (uint64, `streams.prompt_keys`).
        repetition_penalty: Applied to every row (a call-level setting).
    """

    def __init__(self, settings: Sequence[PromptSampling], keys: np.ndarray, repetition_penalty: float):
        kinds: dict[tuple, int] = {}
        self.kind = np.array([kinds.setdefault(s.warp_key, len(kinds)) for s in settings], dtype=np.int64)
        by_kind = {kinds[s.warp_key]: s for s in settings}
        self.settings = [by_kind[k] for k in range(len(kinds))]
        self.procs = [warpers(s) for s in self.settings]
        self.keys = keys
        self.penalty = None
        if repetition_penalty != 1.0:
            from transformers import RepetitionPenaltyLogitsProcessor

            self.penalty = RepetitionPenaltyLogitsProcessor(repetition_penalty)

    def keep(self, rows: np.ndarray) -> None:
        """Only these rows (indices into the current rows) stay in the batch."""
        self.kind, self.keys = self.kind[rows], self.keys[rows]

    def __call__(self, history: torch.Tensor, logits: torch.Tensor, step: int) -> torch.Tensor:
        """Tokens (B,) for decode step `step` from (B, V) logits; `history` (B, T) is what the
        repetition penalty reads as each row's tokens so far, its last `step` columns the
        tokens each row generated."""
        scores = logits.float()
        if self.penalty is not None:
            scores = self.penalty(history, scores)
        generated = history[:, history.shape[1] - step :]  # (B, step)
        if len(self.settings) == 1:  # the common case: one setting, no row indexing
            return self._pick(0, scores, self.keys, step, generated)
        token = torch.empty(len(scores), dtype=torch.long, device=scores.device)
        for k in np.unique(self.kind):
            at = np.flatnonzero(self.kind == k)
            idx = torch.from_numpy(at).to(scores.device)
            token[idx] = self._pick(int(k), scores[idx], self.keys[at], step, generated[idx])
        return token

    def _pick(self, k: int, scores: torch.Tensor, keys: np.ndarray, step: int, generated: torch.Tensor) -> torch.Tensor:
        setting = self.settings[k]
        if setting.penalized:
            scores = output_penalties(scores, generated, setting.presence_penalty, setting.frequency_penalty)
        if setting.method == "greedy":
            return scores.argmax(-1)
        return draw(self.procs[k](None, scores), uniforms(keys, step))

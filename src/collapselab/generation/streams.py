"""Per-prompt random streams: prompt i's draws depend only on (seed, i) and the step.

A batch-level generator would make a prompt's samples depend on which other prompts share
its batch, so changing `batch_tokens`, the length sort or the prefix grouping would change
the data an experiment trains on. Here every prompt has its own 64-bit key, and the uniform
of decode step t is a counter-based hash of (key, t) (SplitMix64's finalizer), computed for
all rows of a batch at once with no state to carry or reorder when rows leave the batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def prompt_key(seed: int, index: int) -> int:
    """The 64-bit key of prompt `index` under `seed` (also vLLM's per-request seed, 63 bits)."""
    digest = hashlib.sha256(f"collapselab-generate/{seed}/{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def prompt_keys(seed: int, indices: Sequence[int]) -> np.ndarray:
    """Keys of the given prompt indices, as a uint64 array in the same order."""
    return np.array([prompt_key(seed, i) for i in indices], dtype=np.uint64)


def uniforms(keys: np.ndarray, step: int) -> np.ndarray:
    """One uniform in [0, 1) per key for decode step `step` (float64, 53 random bits)."""
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        z = keys + np.uint64(step + 1) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

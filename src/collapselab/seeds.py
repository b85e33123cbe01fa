"""Seeds derived per step: one function for the engine, mixing, generation and the refinery."""

from __future__ import annotations

import hashlib


def step_seed(seed: int, generation: int, step: str) -> int:
    """The seed of one step of one generation, e.g. `step_seed(0, 2, "generate")`.

    Arms share it: common random numbers make arms comparable, so two arms that differ
    only in their mix policy draw the same samples where their inputs agree.
    """
    return int(hashlib.sha256(f"{seed}/{generation}/{step}".encode()).hexdigest()[:8], 16)

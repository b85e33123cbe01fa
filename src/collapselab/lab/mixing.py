"""Mix policies: what generation g trains on, given the human pool and earlier synthetic data.

- replace: g=0 the human pool; after that only the last generation's output.
- accumulate: the human pool plus every synthetic set so far (grows each generation).
- accumulate_subsample: a fixed-size sample of that accumulated pool.
- ratio r: a fixed-size set, a share r drawn from the last generation's output and the
  rest drawn fresh from the human pool.
Every draw comes from the step's seed, so the same (seed, generation) always gives the same set.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from collapselab.records import Record

if TYPE_CHECKING:
    from collapselab.config import ArmConfig


def _sample(records: Sequence[Record], n: int, rng: random.Random) -> list[Record]:
    if n > len(records):  # collapselab.checks names the arm's size before any training
        raise ValueError(f"mix: cannot draw {n} records from a pool of {len(records)}")
    idx = sorted(rng.sample(range(len(records)), n))  # keep pool order: stable, readable files
    return [records[i] for i in idx]


def mix(arm: ArmConfig, generation: int, human: Sequence[Record], synthetic: Sequence[Sequence[Record]], seed: int) -> list[Record]:
    """The training set of `generation` for `arm`.

    Args:
        arm: the arm's config (mix policy, ratio, size).
        generation: g; `synthetic` must hold the outputs of generations 0..g-1.
        human: the human training pool.
        synthetic: synthetic[k] is what model_k wrote.
        seed: the step's seed (`seeds.step_seed(seed, g, "mix")`); every draw comes from it.
    """
    if len(synthetic) != generation:
        raise ValueError(f"generation {generation} needs {generation} earlier synthetic sets, got {len(synthetic)}")
    if generation == 0:
        return list(human)
    rng = random.Random(seed)
    size = arm.size or len(human)
    if arm.mix == "replace":
        return list(synthetic[-1])
    pool = list(human) + [r for s in synthetic for r in s]
    if arm.mix == "accumulate":
        return pool
    if arm.mix == "accumulate_subsample":
        return _sample(pool, size, rng)
    # ratio: r synthetic from the last generation, 1-r fresh human, fixed size
    assert arm.ratio is not None  # the config validator guarantees it
    n_syn = round(arm.ratio * size)
    return _sample(synthetic[-1], n_syn, rng) + _sample(human, size - n_syn, rng)

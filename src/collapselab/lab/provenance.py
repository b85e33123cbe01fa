"""The provenance of a generated record: which model wrote it, for which arm, generation and
seed, with which decoding settings (`decoding.generation` over `decoding`; the record's
`generator` field, JSON)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collapselab.config import ExperimentConfig


def generator_tag(cfg: ExperimentConfig, arm: str, generation: int, seed: int, **extra: Any) -> str:
    """The provenance of a generated record: model, arm, generation, seed, decoding (JSON)."""
    return json.dumps(
        {"model": cfg.model.name, "arm": arm, "generation": generation, "seed": seed,
         "decoding": cfg.decoding.for_role("generation").model_dump(mode="json"), **extra},
        sort_keys=True,
    )

"""Apply the configured filters in order; keep rejected records with their reasons.

A record is rejected by the first filter that fails it, so the per-reason counts add up
to the number rejected. A rejected record keeps its provenance; its `generator` JSON
gains a `reject` object (reason, value, threshold, detail), so rejected.parquet alone
says why each record was dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from collapselab.config.refinery import FiltersConfig
from collapselab.records import Record
from collapselab.refinery.filters import FILTERS, FilterContext, Rejection


@dataclass(slots=True)
class FilterOutcome:
    passed: list[Record]
    rejected: list[Record]  # with `reject` in their generator JSON
    stats: dict[str, Any]  # attempts, passed, rejected {reason: count}, filters {name: {...}}


def with_rejection(r: Record, why: Rejection) -> Record:
    """`r` with the rejection recorded in its generator JSON."""
    tag = json.loads(r.generator) if r.generator else {}
    tag["reject"] = {"reason": why.reason, "value": why.value, "threshold": why.threshold, "detail": why.detail}
    return r.derive(generator=json.dumps(tag, sort_keys=True))


def rejection_of(r: Record) -> dict[str, Any] | None:
    """The `reject` object of a record written by `with_rejection` (None for a kept record)."""
    return json.loads(r.generator).get("reject") if r.generator else None


def run_filters(candidates: Sequence[Record], seed: Sequence[Record], cfg: FiltersConfig, ctx: FilterContext | None = None) -> FilterOutcome:
    """Filter `candidates` against the human `seed` with `cfg.order` and its thresholds."""
    ctx = ctx or FilterContext(seed, cfg)
    alive = list(candidates)
    rejected: list[Record] = []
    reasons: dict[str, int] = {}
    per_filter: dict[str, dict[str, Any]] = {}
    for name in cfg.order:
        t0 = time.perf_counter()
        verdicts = FILTERS[name](alive, ctx)
        keep = []
        for r, why in zip(alive, verdicts, strict=True):
            if why is None:
                keep.append(r)
            else:
                rejected.append(with_rejection(r, why))
                reasons[why.reason] = reasons.get(why.reason, 0) + 1
        per_filter[name] = {"checked": len(alive), "rejected": len(alive) - len(keep), "seconds": round(time.perf_counter() - t0, 4)}
        alive = keep
    # refinery.json is written with sorted keys: the order is kept as its own list
    stats = {"attempts": len(candidates), "passed": len(alive), "rejected": dict(sorted(reasons.items())),
             "filters": per_filter, "filter_order": list(cfg.order)}
    return FilterOutcome(alive, rejected, stats)

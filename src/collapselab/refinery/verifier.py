"""The verifier in the loop (Feng et al. 2024, "Beyond model collapse: scaling up with
synthesized data requires verification"): an arm with `arms[].verify` passes what each
generation wrote through the refinery's filters before the next generation's mix draws on
it. The filters and their order are the `refinery.filters` block's, as for the builders;
the human seed they are judged against (the gibberish scorer's calibration, duplicates of
the seed) is the human training pool.
"""

from __future__ import annotations

from collections.abc import Sequence

from collapselab.config.refinery import FiltersConfig
from collapselab.records import Record
from collapselab.refinery.pipeline import FilterOutcome, run_filters

# Filters that compare a record with the human seed. In the recursive loop every synthetic
# record keeps the human question it answers (and a right answer is the human answer), so
# these would reject the records that are right (`collapselab.checks` refuses them there).
SEED_FILTERS = ("exact_duplicate", "seed_ngram_overlap", "seed_embedding_similarity")


def verify(written: Sequence[Record], human: Sequence[Record], cfg: FiltersConfig, *, of_generation: int) -> FilterOutcome:
    """What generation `of_generation` wrote, through the filters of `cfg` in their order.

    Returns:
        The records that passed (in their order), the rejected ones with their reasons in
        their generator JSON, and the counts (`run_filters`' stats: attempts, passed,
        rejected by reason, checked and rejected per filter) with `kind` "verify" and
        `of_generation`.
    """
    out = run_filters(written, human, cfg)
    out.stats.update(kind="verify", of_generation=of_generation)
    return out

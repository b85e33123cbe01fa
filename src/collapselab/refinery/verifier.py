"""The verifier in the loop (Feng et al. 2024, "Beyond model collapse: scaling up with
synthesized data requires verification"): an arm with `arms[].verify` passes what each
generation wrote through the refinery's filters before the next generation's mix draws on
it. The filters and their order are the `refinery.filters` block's, as for the builders;
the human seed they are judged against (the gibberish scorer's calibration, duplicates of
the seed) is the human training pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from collapselab.config.refinery import FiltersConfig
from collapselab.errors import RunError
from collapselab.records import Record, atomic_write_json, write_records
from collapselab.refinery.pipeline import FilterOutcome, run_filters
from collapselab.rundir.generation import REJECTED, GenerationFolder

if TYPE_CHECKING:
    from collapselab.config import ArmConfig
    from collapselab.lab.contract import Lab

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


def verified(lab: Lab, arm: ArmConfig, seed: int, g: int, synthetic: list[list[Record]], folder: GenerationFolder) -> list[list[Record]]:
    """synthetic_0..g-1 as generation g's mix draws on them (the engine's step 1): as written,
    or for an arm that verifies (`arms[].verify`) only what passed the filters. What
    generation g-1 wrote is filtered here, before the mix: its rejects, with their reasons, go
    to generation g's rejected.parquet and the counts to its refinery.json (so to its
    metrics.json "refinery"); the rejects of earlier generations are read from their folders.

    Raises:
        RunError: A replace arm whose last generation's records were all rejected.
    """
    if not arm.verify or g == 0:
        return synthetic
    out = verify(synthetic[-1], lab.human.train, lab.cfg.refinery.filters, of_generation=g - 1)
    if not out.passed and arm.mix == "replace":
        raise RunError(f"arms {arm.name!r}, seed {seed}: the verifier (arms[].verify) rejected all {len(synthetic[-1])} records "
                       f"generation {g - 1} wrote ({out.stats['rejected']}): generation {g} has nothing to train on")
    write_records(folder.rejected, out.rejected)
    atomic_write_json(folder.refinery, out.stats)
    dropped = {r.id for r in out.rejected}
    dropped |= {r.id for k in range(1, g) for r in GenerationFolder(lab.run_dir, arm.name, seed, k).read_records(REJECTED)}
    return [[r for r in s if r.id not in dropped] for s in synthetic]

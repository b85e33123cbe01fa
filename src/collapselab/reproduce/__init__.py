"""The published collapse findings as data, and the verdicts of our runs on them.

- `claims`: the claim file (the paper, its setting and figures, the configs that test it,
  the checks), `load_claim`, `claim_names`, `claim_problems`;
- `expressions`: a check's expression, a linear combination of `ARM.gN[:METRIC]` terms;
- `verdicts`: a check's value per seed, its 95 % interval over seeds, the verdict rules;
- `suite`: run a claim's config through the engine and write `<run_dir>/reproduction.json`.

The faces show the verdicts: `collapselab reproduce` (commands/reproduce.py), the run's
report ("Reproduction") and the page of every claim (report/reproductions.py).
"""

from __future__ import annotations

from collapselab.reproduce.claims import Claim, claim_names, load_claim
from collapselab.reproduce.suite import read_reproduction, run_claim

__all__ = ["Claim", "claim_names", "load_claim", "read_reproduction", "run_claim"]

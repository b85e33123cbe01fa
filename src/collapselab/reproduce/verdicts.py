"""From a finished run to a verdict: each check's value per seed, its 95 % interval over
seeds, and what it says about the claim.

Per seed, a check's expression is computed from that seed's metrics.json files: the same
seed's arms share generation 0, so a difference between arms or generations is paired. Over
the seeds: the mean and the two-sided 95 % t-interval (`collapselab.metrics.stats.summarize`),
with the number of seeds it rests on.

Verdict of a check (never from fewer than `MIN_SEEDS` seeds):

    fewer than 3 seeds                          inconclusive (n seeds)
    interval entirely on the claimed side of 0  reproduced
    interval entirely on the other side         not reproduced
    interval touching or straddling 0           inconclusive at this size

Verdict of a claim: every check reproduced -> reproduced; any check not reproduced -> not
reproduced; else inconclusive. The magnitude (ours beside the paper's value: their
difference and ratio) is reported, never part of the verdict.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from collapselab.errors import RunError
from collapselab.metrics.stats import Summary, summarize
from collapselab.reproduce.claims import Check, Claim, term_metric
from collapselab.reproduce.expressions import Term
from collapselab.results import RunData

MIN_SEEDS = 3
REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this size"


def few_seeds(n: int) -> str:
    return f"inconclusive ({n} seed{'' if n == 1 else 's'})"


@dataclass(frozen=True, slots=True)
class CheckResult:
    id: str
    claim: str
    expr: str
    expect: str
    metric: str
    values: dict[str, float]  # seed (as text: a JSON key) -> the expression's value
    missing: dict[str, str]  # seed -> why it has no value (a generation not finished yet)
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    verdict: str
    paper_value: float | None
    paper_source: str | None
    difference: float | None  # ours - paper
    ratio: float | None  # ours / paper

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(summary: Summary | None, expect: str) -> str:
    """A check's verdict from its summary over seeds (None: no seed has a value)."""
    if summary is None or summary.n < MIN_SEEDS:
        return few_seeds(0 if summary is None else summary.n)
    lo, hi = (summary.ci_low, summary.ci_high) if expect == "positive" else (-summary.ci_high, -summary.ci_low)
    if lo > 0:
        return REPRODUCED
    if hi < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def claim_verdict(verdicts: list[str]) -> str:
    """reproduced when every check is, not reproduced when any check is not, else inconclusive."""
    if verdicts and all(v == REPRODUCED for v in verdicts):
        return REPRODUCED
    if any(v == NOT_REPRODUCED for v in verdicts):
        return NOT_REPRODUCED
    return "inconclusive"


def term_value(run: RunData, term: Term, seed: int, default_metric: str) -> float | None:
    """The number `term` reads for `seed`; None when that generation is not finished.

    Raises:
        RunError: The finished generation has no such metric (or detail), or its value is null.
    """
    found = [g for g in run.find(term.arm, term.generation) if g.seed == seed]
    if not found:
        return None
    name, path = term_metric(term, default_metric)
    entry = found[0].doc["metrics"].get(name)
    where = f"{found[0].folder / 'metrics.json'}"
    if entry is None:
        raise RunError(f"{where}: {term}: no metric {name!r} (the run computes {sorted(found[0].doc['metrics'])})")
    value: Any = entry["value"] if not path else entry["details"]
    for key in path:
        if not isinstance(value, dict) or key not in value:
            raise RunError(f"{where}: {term}: metric {name!r} has no detail {'.'.join(path)!r}")
        value = value[key]
    if not isinstance(value, int | float):
        raise RunError(f"{where}: {term}: {value!r} is not a number")
    return float(value)


def evaluate_check(run: RunData, check: Check, claim: Claim) -> CheckResult:
    """The check's value per seed of `run`, its summary over seeds and its verdict."""
    metric = check.metric or claim.metric
    values: dict[str, float] = {}
    missing: dict[str, str] = {}
    for seed in run.cfg.experiment.seeds:
        numbers = {t: term_value(run, t, seed, metric) for t, _ in check.linear.terms}
        absent = [str(t) for t, v in numbers.items() if v is None]
        if absent:
            missing[str(seed)] = f"not finished: {', '.join(absent)}"
        else:
            values[str(seed)] = check.linear.value(numbers.__getitem__)
    s = summarize(list(values.values())) if values else None
    paper = check.paper.value if check.paper else None
    ours = s.mean if s else None
    return CheckResult(
        check.id, check.claim, check.expr, check.expect, metric, values, missing,
        ours, s.ci_low if s else None, s.ci_high if s else None, s.n if s else 0, verdict(s, check.expect),
        paper, check.paper.source if check.paper else None,
        None if ours is None or paper is None else ours - paper,
        None if ours is None or not paper else ours / paper,
    )


def number(x: float | None) -> str:
    """A figure as the tables print it: 4 significant digits, a sign."""
    return "not measured" if x is None else f"{x:+.4g}"


def ours_text(r: dict[str, Any]) -> str:
    """Our figure: '+0.991 [+0.874, +1.108] (3 seeds)'."""
    if r["mean"] is None:
        return "not measured (" + "; ".join(f"seed {k}: {v}" for k, v in r["missing"].items()) + ")"
    seeds = f"{r['n']} seed{'' if r['n'] == 1 else 's'}"
    if r["n"] == 1:
        return f"{number(r['mean'])} (1 seed, no interval)"
    return f"{number(r['mean'])} [{number(r['ci_low'])}, {number(r['ci_high'])}] ({seeds})"


def paper_text(r: dict[str, Any]) -> str:
    """The paper's figure: '+0.57 (Table 2: 2.39 - 1.82)', or its source alone."""
    if r["paper_source"] is None:
        return "none given"
    return f"{number(r['paper_value'])} ({r['paper_source']})" if r["paper_value"] is not None else r["paper_source"]


def magnitude_text(r: dict[str, Any]) -> str:
    """Ours beside the paper's: 'ours - paper +0.42, ours / paper 1.7x' (reported, not judged)."""
    if r["difference"] is None:
        return ""
    ratio = f", ours / paper {r['ratio']:.2g}x" if r["ratio"] is not None else ""
    return f"ours - paper {number(r['difference'])}{ratio}"

"""The verdict rules: values per seed (paired), the 95 % t-interval over seeds, and what
decides reproduced / not reproduced / inconclusive. A run is made of metrics.json documents
in memory: no training."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny import tiny_config

from collapselab.config import config_from_dict
from collapselab.errors import RunError
from collapselab.metrics.stats import summarize
from collapselab.reproduce.claims import Claim
from collapselab.reproduce.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    claim_verdict,
    evaluate_check,
    ours_text,
    verdict,
)
from collapselab.results import Generation, RunData


def _run(values: dict[tuple[str, int, int], float], seeds=(0, 1, 2), generations: int = 3) -> RunData:
    """A run whose cross_entropy at (arm, seed, generation) is `values[...]`."""
    cfg = config_from_dict(tiny_config(Path("."), Path("."), seeds=list(seeds), generations=generations))
    gens = [Generation(arm, seed, g, Path(f"run/{arm}/seed-{seed}/gen-{g}"), {"cross_entropy": v},
                       {"metrics": {"cross_entropy": {"value": v, "details": {"p99": 10 * v}}}})
            for (arm, seed, g), v in values.items()]
    return RunData(Path("run"), cfg, {"run_id": "r"}, gens)


def _claim(expr: str, expect: str = "positive", paper: float | None = None) -> Claim:
    return Claim.model_validate({
        "name": "t", "title": "t", "paper": {"title": "p", "authors": "a", "year": 2024}, "setting": "s",
        "config": "c", "paper_config": "c", "cost": {"cpu": "1 s", "gpu": "1 s"}, "metric": "cross_entropy",
        "checks": [{"id": "c1", "claim": "it rises", "expr": expr, "expect": expect,
                    **({"paper": {"value": paper, "source": "Table 1"}} if paper is not None else {})}],
    })


@pytest.mark.parametrize(("values", "expect", "wanted"), [
    ([1.0, 1.1, 1.2], "positive", REPRODUCED),
    ([1.0, 1.1, 1.2], "negative", NOT_REPRODUCED),
    ([-1.0, -1.1, -1.2], "negative", REPRODUCED),
    ([-1.0, -1.1, -1.2], "positive", NOT_REPRODUCED),
    ([1.0, 2.0, 3.0], "positive", INCONCLUSIVE),  # all three above 0, but the interval [-0.48, 4.48] is not
    ([1.0, -1.0, 2.0], "positive", INCONCLUSIVE),  # the interval straddles 0
    ([1.0, -1.0, 2.0], "negative", INCONCLUSIVE),
    ([0.5, 0.5, 0.5], "positive", REPRODUCED),  # no spread: the interval is the mean
    ([5.0], "positive", "inconclusive (1 seed)"),  # never a verdict from one seed
    ([5.0, 6.0], "positive", "inconclusive (2 seeds)"),
])
def test_verdict_rules(values, expect, wanted):
    assert verdict(summarize(values), expect) == wanted


def test_no_seed_is_inconclusive():
    assert verdict(None, "positive") == "inconclusive (0 seeds)"


def test_the_interval_is_the_t_interval_over_seeds():
    s = summarize([1.0, 2.0, 3.0])
    # mean 2, sd 1, t(0.975, 2) = 4.303: half-width 4.303 / sqrt(3) = 2.484
    assert (s.mean, s.n) == (2.0, 3) and s.ci_low == pytest.approx(2 - 2.4843, abs=1e-3) and s.ci_high == pytest.approx(4.4843, abs=1e-3)


def test_claim_verdict_needs_every_check():
    assert claim_verdict([REPRODUCED, REPRODUCED]) == REPRODUCED
    assert claim_verdict([REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE]) == NOT_REPRODUCED
    assert claim_verdict([REPRODUCED, INCONCLUSIVE]) == "inconclusive"
    assert claim_verdict([REPRODUCED, "inconclusive (2 seeds)"]) == "inconclusive"


def test_values_are_paired_by_seed():
    # every seed's replace arm rises by 2 over its own generation 0, whose level differs by
    # seed: paired, the difference has no spread (unpaired, the levels' spread would swamp it)
    run = _run({("replace", s, g): 3.0 * s + g for s in (0, 1, 2) for g in (0, 2)})
    claim = _claim("replace.g2 - replace.g0", paper=0.5)
    r = evaluate_check(run, claim.checks[0], claim)
    assert r.values == {"0": 2.0, "1": 2.0, "2": 2.0} and (r.mean, r.ci_low, r.ci_high, r.n) == (2.0, 2.0, 2.0, 3)
    assert r.verdict == REPRODUCED and r.difference == pytest.approx(1.5) and r.ratio == pytest.approx(4.0)
    assert ours_text(r.to_dict()) == "+2 [+2, +2] (3 seeds)"


def test_a_detail_of_a_metric_and_a_seed_not_finished():
    run = _run({("a", 0, 0): 1.0, ("a", 0, 2): 2.0, ("a", 1, 0): 1.0, ("a", 1, 2): 3.0, ("a", 2, 0): 1.0})
    claim = _claim("a.g2:cross_entropy.p99 - a.g0:cross_entropy.p99")
    r = evaluate_check(run, claim.checks[0], claim)
    assert r.values == {"0": pytest.approx(10.0), "1": pytest.approx(20.0)}
    assert r.missing == {"2": "not finished: a.g2:cross_entropy.p99"}
    assert r.n == 2 and r.verdict == "inconclusive (2 seeds)"


def test_a_metric_the_run_does_not_have_is_an_error():
    run = _run({("a", s, g): 1.0 for s in (0, 1, 2) for g in (0, 2)})
    claim = _claim("a.g2:perplexity - a.g0:perplexity")
    with pytest.raises(RunError, match=r"run/a/seed-0/gen-2/metrics.json: a.g2:perplexity: no metric 'perplexity'"):
        evaluate_check(run, claim.checks[0], claim)

"""Collapse stages on hand-made trajectories; seed statistics and the paired bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collapselab.config import StageBlock
from collapselab.metrics.stages import collapse_stage, collapse_stages
from collapselab.metrics.stats import paired_bootstrap, summarize


def test_stages_of_a_collapsing_arm():
    # MMLU-like: chance 0.25, generation 0 at 0.45 (0.20 above chance).
    stages = collapse_stages([0.45, 0.44, 0.35, 0.26, 0.40], chance=0.25, gibberish=[2.9, 2.8, 2.7, 2.6, 1.0],
                             thresholds=StageBlock())
    assert [s.stage for s in stages] == ["A", "A", "B", "C", "C"]
    assert stages[1].retained == pytest.approx(0.95)  # (0.44 - 0.25) / 0.20
    assert stages[2].retained == pytest.approx(0.5)
    assert "chance" in stages[3].reason and "gibberish" in stages[4].reason


def test_stage_thresholds_come_from_the_config_block():
    strict = StageBlock(retained=0.99, chance_margin=0.0, gibberish_floor=2.95)
    assert collapse_stage(0.44, 0.45, chance=0.25, thresholds=strict).stage == "B"
    assert collapse_stage(0.44, 0.45, chance=0.25, gibberish=2.9, thresholds=strict).stage == "C"
    assert collapse_stage(0.44, 0.45, chance=0.25, thresholds=StageBlock()).stage == "A"
    # Generation 0 at chance: nothing to lose, so a fluent above-chance generation is A.
    assert collapse_stage(0.30, 0.25, chance=0.25, thresholds=StageBlock()).stage == "A"
    with pytest.raises(ValueError, match="fraction"):
        collapse_stage(45.0, 50.0, thresholds=StageBlock())


def test_summarize_mean_std_and_t_interval():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    std = math.sqrt(5 / 3)  # squared deviations 2.25 + 0.25 + 0.25 + 2.25 over n - 1 = 3
    half = 3.182446305 * std / 2  # t(0.975, df=3) from the table, over sqrt(4)
    assert (s.mean, s.n) == (2.5, 4)
    assert s.std == pytest.approx(std)
    assert (s.ci_low, s.ci_high) == pytest.approx((2.5 - half, 2.5 + half), abs=1e-6)
    one = summarize([0.7])
    assert (one.mean, one.std, one.ci_low, one.ci_high) == (0.7, 0.0, 0.7, 0.7)


def test_paired_bootstrap_detects_a_difference_and_not_a_non_difference():
    rng = np.random.default_rng(1)
    base = rng.random(300)
    better = base + 0.1 + rng.normal(0, 0.05, 300)
    r = paired_bootstrap(better, base, n=2000, seed=0)
    d = better - base
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))  # normal-theory interval for comparison
    assert r.difference == pytest.approx(d.mean())
    assert r.ci_low == pytest.approx(d.mean() - half, abs=0.2 * half)
    assert r.ci_high == pytest.approx(d.mean() + half, abs=0.2 * half)
    assert r.p_value == pytest.approx(1 / 2001)
    same = paired_bootstrap(base, base, n=500)
    assert same.difference == 0.0 and same.p_value == 1.0


def test_paired_bootstrap_p_values_are_calibrated_under_the_null():
    rng = np.random.default_rng(2)
    p = [paired_bootstrap(rng.random(60), rng.random(60), n=400, seed=i).p_value for i in range(200)]
    rejected = np.mean(np.array(p) < 0.05)
    assert 0.01 <= rejected <= 0.10

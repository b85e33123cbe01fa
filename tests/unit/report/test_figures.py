"""The report's figures and the palette it shares with the dashboard: one colour per arm
whatever is shown, generations shaded the same way in both, no interval for one seed, and
a reference line far from the curves named at the edge instead of squashing them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from collapselab.metrics.stats import Summary, summarize
from collapselab.report import figures
from collapselab.report.palette import COLORS, arm_colors, generation_colors


def test_an_arm_keeps_its_colour_and_later_generations_are_darker():
    colors = arm_colors(["replace", "accumulate", "ratio-0.1"])
    assert colors == {"replace": COLORS[0], "accumulate": COLORS[1], "ratio-0.1": COLORS[2]}
    assert len(set(arm_colors([f"arm{i}" for i in range(12)]).values())) == len(COLORS)  # cycled beyond the palette
    shades = generation_colors([3, 0, 1, 2])

    def lightness(hex_color: str) -> int:
        return sum(int(hex_color[i:i + 2], 16) for i in (1, 3, 5))

    assert list(shades) == [0, 1, 2, 3]
    assert [lightness(shades[g]) for g in range(4)] == sorted((lightness(c) for c in shades.values()), reverse=True)
    assert shades[3] == "#440154"  # the last generation: viridis' darkest end
    assert generation_colors([5]) == {5: generation_colors([0, 1])[0]}


def test_one_seed_draws_no_error_bars():
    one = [summarize([2.0]), summarize([3.0])]
    assert figures._yerr(one) is None
    two = [summarize([2.0, 2.4]), summarize([3.0, 3.1])]
    err = figures._yerr(two)
    assert err.shape == (2, 2) and (err > 0).all()


def test_a_far_baseline_is_named_not_drawn(tmp_path):
    curves = [54.8, 60.1, 80.3, 109.8]
    near, far = figures.split_references([("unigram model", 395.0), ("human test text", 120.0)], curves)
    assert near == [("human test text", 120.0)] and far == [("unigram model", 395.0)]
    # the panel's axis stays on the curves (and the near line), not on the baseline
    series = {"perplexity": {"replace": [Summary(v, 0.0, v, v, 1) for v in curves]}}
    path = figures.per_generation([("perplexity", "perplexity", "test")], series, [0, 1, 2, 3], "t", tmp_path / "p.png",
                                  arm_colors(["replace"]), {"perplexity": [("unigram model", 395.0), ("human test text", 120.0)]})
    assert path.stat().st_size > 5000
    fig, ax = plt.subplots()
    figures._references(ax, [("unigram model", 395.0)], curves)
    low, high = ax.get_ylim()
    assert low < 54.8 and 109.8 < high < 200 and any("above this axis" in t.get_text() for t in ax.texts)
    plt.close(fig)
    near, far = figures.split_references([("unigram model", 89.2)], [186.0, 194.0, 127.0, 263.0])  # within reach: drawn
    assert near and not far and np.isfinite(near[0][1])

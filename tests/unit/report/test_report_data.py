"""The data behind the per-sequence perplexity figure, shared by the report and the dashboard."""

from __future__ import annotations

import pytest

from collapselab.report.data import perplexity_histograms, sequence_perplexities


def test_sequence_perplexities_come_from_metrics_json():
    doc = {"metrics": {"synthetic_perplexity": {"value": 3.0, "details": {"per_sequence": [2.0, 3.0, 9.0]}}}}
    assert sequence_perplexities(doc) == [2.0, 3.0, 9.0]
    assert sequence_perplexities({"metrics": {"synthetic_perplexity": {"value": 3.0, "details": {"median": 3.0}}}}) is None
    assert sequence_perplexities({"metrics": {"perplexity": {"value": 3.0, "details": {}}}}) is None


def test_histograms_share_log_bins_and_sum_to_one_per_generation():
    h = perplexity_histograms({0: [2.0, 2.5, 3.0, 4.0], 1: [2.0, 50.0, 100.0]}, bins=10)
    assert len(h.edges) == 11 and h.edges[0] == pytest.approx(2.0) and h.edges[-1] == pytest.approx(100.0)
    ratios = [b / a for a, b in zip(h.edges, h.edges[1:], strict=False)]
    assert ratios == pytest.approx([ratios[0]] * 10)  # log-spaced
    assert {g: sum(s) for g, s in h.share.items()} == pytest.approx({0: 1.0, 1: 1.0})
    assert h.counts == {0: 4, 1: 3}
    assert h.share[1][-1] == pytest.approx(1 / 3) and h.share[0][-1] == 0  # 100 falls in the last bin
    one = perplexity_histograms({0: [5.0, 5.0]})
    assert one.share[0] == [1.0] and one.edges == [5.0, 6.0]  # every value equal: one bin

"""The data behind the per-sequence perplexity figure, shared by the report and the dashboard,
read through `collapselab.results` from the run directory or the database."""

from __future__ import annotations

import pytest

from collapselab.report.data import per_sequence_values, perplexity_histograms
from collapselab.results import load_run, run_from_store, sequence_perplexities
from collapselab.rundir.generation import SYNTHETIC


def test_sequence_perplexities_are_the_engine_s_per_record_scores_read_either_way(tiny_lm_run, tiny_qa_run, tmp_path):
    import json

    import pyarrow.parquet as pq

    from collapselab.store import Store, import_run_dir

    run = load_run(tiny_lm_run.run_dir)
    g = run.find("replace", 1)[0]
    rows = pq.read_table(g.folder / "synthetic_scores.parquet").to_pylist()
    expected = {r["record_id"]: json.loads(r["scores"])["synthetic_perplexity"] for r in rows}
    assert len(expected) == len(run.records(g, SYNTHETIC)) > 0
    assert sequence_perplexities(run, g) == expected
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    import_run_dir(db, tiny_lm_run.run_dir)
    with Store(db) as store:
        stored = run_from_store(store, tiny_lm_run.run_dir.name)
        assert sequence_perplexities(stored, stored.find("replace", 1)[0]) == expected
        by_generation = per_sequence_values(stored, "replace", "synthetic_perplexity")
    assert sorted(by_generation) == [0, 1]
    assert sorted(by_generation[1]) == sorted(v for s in (0, 1) for v in sequence_perplexities(run, run.find("replace", 1)[s]).values())
    qa = load_run(tiny_qa_run.run_dir)  # synthetic_perplexity not computed: none
    assert all(sequence_perplexities(qa, x) is None for x in qa.gens)


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

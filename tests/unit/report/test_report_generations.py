"""A tiny recursive lm run, then `report`: per-generation views show what varies (constants
and one-generation baselines become a table line or a dashed reference, all-zero gaps say
"no difference"), and the synthetic data under the external reference is drawn per
generation beside its human yardstick."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny import tiny_config, tiny_corpus, tiny_reference

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.report import write_report
from collapselab.report.data import per_sequence_values, perplexity_histograms
from collapselab.report.figures import all_equal
from collapselab.report.outcomes import reference_lines, varying
from collapselab.results import load_run
from report.test_report import _placeholder, _report


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    """A tiny recursive lm run whose config names a tiny external reference model (its own tokenizer)."""
    tmp = tmp_path_factory.mktemp("lm-run")
    folder = tmp / "text"
    folder.mkdir()
    for split, n, seed in (("train", 120, 1), ("test", 30, 2)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in tiny_corpus(n, seed, split)))
    cfg = tiny_config(folder, tmp / "runs", generations=2, seeds=[0, 1])
    cfg["evaluation"]["metrics"] += ["distinct_2", "duplicate_rate", "synthetic_perplexity", "external_synthetic_perplexity"]
    cfg["evaluation"].update(reference_model=str(tiny_reference(tmp / "reference")), reference_sequences=16)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLLAPSELAB_CACHE", str(tmp / "cache"))
        return run_experiment(config_from_dict(cfg), db_url=f"sqlite:///{tmp / 'db.sqlite'}")


def test_recursive_lm_report(lm_run, tmp_path):
    md, html = _report(lm_run, tmp_path / "out")
    assert not _placeholder(md) and not _placeholder(html)
    assert "Success criteria" not in md and "Refinery and filter effectiveness" not in md  # absent, not "does not apply"
    assert "perplexity comparison" in md and "gen 1" in md and "mean over 2 seeds" in md
    assert (tmp_path / "out/figures/generations-test.png").exists() and (tmp_path / "out/figures/generations-synthetic.png").exists()


def test_only_what_varies_is_plotted_and_baselines_are_reference_lines(lm_run):
    run = load_run(lm_run)
    gens = [0, 1]
    plotted, kept_out = varying(run, run.metric_names, gens)
    assert "reference_perplexity" in kept_out and "the same at every generation of each arm and seed" in kept_out["reference_perplexity"]
    assert "unigram_perplexity" in kept_out and kept_out["unigram_perplexity"].startswith("generation 0 only")
    assert {"perplexity", "external_synthetic_perplexity", "synthetic_perplexity"} <= set(plotted)
    lines = reference_lines(run, plotted)
    assert lines["external_synthetic_perplexity"] == [("human test text", run.run_metrics["external_test_perplexity"]["value"])]
    assert lines["perplexity"][0][0] == "unigram model"
    assert lines["perplexity"][0][1] == pytest.approx(run.find("replace", 0)[0].metrics["unigram_perplexity"])


def test_report_draws_the_external_reference_per_generation_and_the_histograms(lm_run, tmp_path, monkeypatch):
    from collapselab.report import outcomes

    few = write_report(lm_run, tmp_path / "few").markdown.read_text()  # 48 and 32 texts per generation: no histogram
    assert "histogram-" not in few
    assert "No histogram of per-sequence synthetic perplexity (g0): 48 texts per generation" in few
    monkeypatch.setattr(outcomes, "MIN_HISTOGRAM_TEXTS", 10)  # enough here: the same run draws them
    paths = write_report(lm_run, tmp_path / "report")
    md = paths.markdown.read_text()
    assert "synthetic perplexity (external)" in md and "human test perplexity (external)" in md
    reference = json.loads((lm_run / "manifest.json").read_text())["reference_model"]["name"]
    assert f"`{reference}`" in md  # the yardstick says which model scored it
    assert "| reference perplexity (test, generation-0 model) | the same at every generation of each arm and seed" in md
    assert "| unigram perplexity (test, add-one unigram model) | generation 0 only" in md
    figs = {p.name for p in paths.figures}
    assert {"generations-test.png", "generations-synthetic.png", "histogram-synthetic_perplexity.png",
            "histogram-external_synthetic_perplexity.png"} <= figs
    assert "human test text on the synthetic perplexity (external) panel" in md


def test_a_run_whose_gaps_are_all_zero_says_no_difference(lm_run, tmp_path):
    copy = tmp_path / "same"
    shutil.copytree(lm_run, copy)
    for arm in ("replace", "accumulate"):
        for seed in (0, 1):
            g0 = json.loads((copy / arm / f"seed-{seed}/gen-0/metrics.json").read_text())
            last = copy / arm / f"seed-{seed}/gen-1/metrics.json"
            doc = json.loads(last.read_text())
            doc["metrics"] = {k: v for k, v in g0["metrics"].items() if k != "unigram_perplexity"}
            last.write_text(json.dumps(doc))
    paths = write_report(copy, tmp_path / "report")
    md = paths.markdown.read_text()
    assert "No difference: every gap" in md
    assert "gap.png" not in {p.name for p in paths.figures}


def test_all_equal_ignores_rounding_noise_only():
    assert all_equal([54.81, 54.81 + 1e-14, 54.81]) and all_equal([0.0, 1e-17, -1e-17])
    assert not all_equal([54.81, 54.82]) and not all_equal([0.0, 1e-6])


def test_histograms_with_a_reference_share_one_set_of_log_bins():
    h = perplexity_histograms({0: [10.0, 20.0, 30.0], 1: [5.0, 500.0]}, reference=[15.0, 25.0], bins=10)
    edges, shares, ref = np.array(h.edges), {g: np.array(x) for g, x in h.share.items()}, np.array(h.reference)
    assert edges[0] == pytest.approx(5.0) and edges[-1] == pytest.approx(500.0)
    assert np.allclose(np.diff(np.log(edges)), np.log(100.0) / 10)  # equal on a log scale
    assert all(s.sum() == pytest.approx(1.0) for s in (*shares.values(), ref))
    assert shares[1][0] == 0.5 and shares[1][-1] == 0.5


def test_per_sequence_values_pool_seeds_per_generation(lm_run):
    run = load_run(lm_run)
    values = per_sequence_values(run, "replace", "external_synthetic_perplexity")
    assert sorted(values) == [0, 1]
    for g, v in values.items():
        own = [x for gen in run.find("replace", g) for x in gen.doc["metrics"]["external_synthetic_perplexity"]["details"]["per_sequence"]]
        assert v == own and len(v) == sum(gen.doc["reference"]["synthetic_perplexity"]["sequences"] for gen in run.find("replace", g))

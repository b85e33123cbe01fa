"""The fixed external reference driven from a config through a tiny engine run: loaded once
per run, named in the manifest, the human test set scored once (run_metrics.json), each
generation's synthetic data scored under it into metrics.json; and switched off."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tiny import tiny_config, tiny_reference

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import ConfigError
from collapselab.metrics.external import load_reference
from collapselab.records import read_records
from collapselab.rundir.metrics_file import read_metrics_file, read_run_metrics_file
from collapselab.tasks import get_task


def _alone_ppl(model, tok, text: str, max_tokens: int) -> float:
    """Perplexity of one text scored on its own: tokens 2..T given their prefix, no padding."""
    ids = tok(text, add_special_tokens=False)["input_ids"][:max_tokens]
    x = torch.tensor([ids])
    with torch.no_grad():
        return math.exp(model(input_ids=x, labels=x).loss.item())


def test_reference_model_scores_every_generation_and_the_human_test_set_once(tiny_lm_data, tmp_path, monkeypatch):
    folder = tiny_reference(tmp_path / "reference")
    raw = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    raw["arms"] = raw["arms"][:1]
    raw["evaluation"] = {"reference_model": str(folder), "reference_sequences": 5,
                         "metrics": ["perplexity", "external_synthetic_perplexity", "external_surprisal"]}
    import collapselab.metrics.external as external  # where the reference is loaded

    loads = []
    real_load = external.load_model
    monkeypatch.setattr(external, "load_model", lambda source, **kw: (loads.append(str(source)), real_load(source, **kw))[1])
    run_dir = run_experiment(config_from_dict(raw))
    assert loads.count(str(folder)) == 1  # once per run, not per generation

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["reference_model"]["name"] == str(folder) and manifest["reference_model"]["parameters"] > 0
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    seq_len = raw["training"]["seq_len"]

    # The fixed yardstick: the human test texts under the reference, once per run.
    once = read_run_metrics_file(run_dir / "run_metrics.json")
    assert once.reference_model == str(folder)
    test = once.metrics["external_test_perplexity"]
    assert test.details["of"] == 8 and test.details["sequences"] == 5  # data.test_size blocks, a sample of 5
    assert test.details["p99"] >= test.details["p90"] >= test.details["median"] == test.value
    assert once.metrics["external_test_surprisal"].value > 0

    medians = []
    for g in (0, 1):
        gen = run_dir / "replace" / "seed-0" / f"gen-{g}"
        doc = read_metrics_file(gen / "metrics.json")
        assert set(doc.metrics) - {"unigram_perplexity"} == {"perplexity", "external_synthetic_perplexity", "external_surprisal"}
        entry = doc.metrics["external_synthetic_perplexity"]
        texts = [r.text for r in read_records(gen / "synthetic.parquet")]
        expected = sorted(_alone_ppl(model, tok, t, seq_len) for t in texts
                          if len(tok(t, add_special_tokens=False)["input_ids"]) >= 2)
        scored = sorted(entry.details["per_sequence"])
        assert len(scored) == entry.details["sequences"] <= 5 and entry.details["of"] == len(texts)
        # every scored value is the perplexity of one of the generation's own texts under the reference
        assert all(any(abs(s - e) <= 1e-3 * e for e in expected) for s in scored), (scored, expected)
        ref = doc.reference
        assert ref is not None and ref.model == str(folder)
        assert ref.synthetic_perplexity.median == pytest.approx(float(np.median(scored)), rel=1e-3) == entry.value
        assert ref.synthetic_perplexity.p99 >= ref.synthetic_perplexity.p90 >= ref.synthetic_perplexity.median
        assert ref.synthetic_surprisal_bits == doc.metrics["external_surprisal"].value
        medians.append(entry.value)
    assert medians[0] != medians[1]  # each generation's own data, not a constant

    # Resumed: the yardstick stands as written, the model is loaded once more (once per invocation).
    before = (run_dir / "run_metrics.json").read_text()
    assert run_experiment(config_from_dict(raw)) == run_dir
    assert (run_dir / "run_metrics.json").read_text() == before and loads.count(str(folder)) == 2


def test_reference_model_switched_off_or_unused_is_not_loaded_and_its_metrics_are_refused(tiny_lm_data, tmp_path):
    raw = tiny_config(tiny_lm_data, tmp_path / "runs")
    assert raw["evaluation"]["metrics"] and load_reference(config_from_dict(raw), get_task("lm")) is None  # no external_* metric listed
    raw["evaluation"] = {"reference_model": None}
    assert load_reference(config_from_dict(raw), get_task("lm")) is None
    raw["evaluation"] = {"reference_model": None, "metrics": ["perplexity", "external_surprisal"]}
    with pytest.raises(ConfigError, match=r"evaluation.metrics.1: 'external_surprisal' is scored by the external reference, and evaluation.reference_model is null"):
        run_experiment(config_from_dict(raw))
    raw["evaluation"] = {"reference_model": str(tiny_reference(tmp_path / "ref")), "metrics": ["external_test_perplexity"]}
    with pytest.raises(ConfigError, match=r"evaluation.metrics.0: 'external_test_perplexity' is computed once per run"):
        run_experiment(config_from_dict(raw))
    assert not (tmp_path / "runs").exists()  # refused before any run directory was made


def test_missing_gibberish_background_fails_before_the_run_directory_is_made(tiny_lm_data, tmp_path, monkeypatch):
    from collapselab.datasets import DatasetError

    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path / "no-data-here"))
    raw = tiny_config(tiny_lm_data, tmp_path / "runs")
    raw["evaluation"] = {"reference_model": None, "metrics": ["perplexity", "gibberish_score"]}
    with pytest.raises(DatasetError, match=r"^evaluation.gibberish_background: "):
        run_experiment(config_from_dict(raw))
    assert not (tmp_path / "runs").exists()

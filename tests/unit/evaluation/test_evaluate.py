"""`collapselab evaluate`: a model scored outside a run gives the numbers a run gives it.

A pretrained model's scores equal generation 0's zero-shot baseline of a run on the same
data keys; a run's generation evaluated on its run's own test set gives its own metrics.json
again; on another test set, other questions."""

from __future__ import annotations

import json

import pytest
from tiny import save_chat_model, tiny_config, write_tiny_qa
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import RunError
from collapselab.evaluation import evaluate_model, generation_config, model_config
from collapselab.rundir.generation import GenerationFolder
from collapselab.textio import read_parquet

QA = ["exact_match", "f1", "has_ans_f1", "no_ans_accuracy"]


@pytest.fixture(scope="module")
def qa_run(tmp_path_factory):
    """A qa run of a tiny pretrained chat model: generation 0 (fine-tuned) and its zero-shot baseline."""
    root = tmp_path_factory.mktemp("evaluate")
    data = write_tiny_qa(root / "tinyqa")
    base = save_chat_model(root / "pretrained")
    cfg = tiny_config(data, root / "runs", generations=1, task="qa")
    cfg["data"] = {"dataset": "jsonl", "path": str(data), "train_size": 40, "test_size": 10}
    cfg["model"] = {"name": str(base)}
    cfg["training"] = {"epochs": 2, "lr": 0.01, "batch_tokens": 512, "seq_len": 64}
    cfg["decoding"] = {"method": "greedy"}
    cfg["evaluation"] = {"metrics": QA}
    cfg["arms"] = [{"name": "replace", "mix": "replace"}]
    run_dir = run_experiment(config_from_dict(cfg), db_url=f"sqlite:///{root / 'runs.db'}")
    return run_dir, base, data, cfg


@pytest.fixture(scope="module")
def tuned_run(qa_run):
    """A second run whose pretrained model is the first run's fine-tuned generation 0 (a
    model that answers some questions right): its zero-shot baseline is not all zeros."""
    run_dir, _, data, cfg = qa_run
    tuned = GenerationFolder(run_dir, "replace", 0, 0).model
    cfg = {**cfg, "experiment": {**cfg["experiment"], "name": "tuned"}, "model": {"name": str(tuned)},
           "data": {**cfg["data"], "train_size": 4}, "training": {**cfg["training"], "epochs": 1}}
    return run_experiment(config_from_dict(cfg), db_url=f"sqlite:///{run_dir.parents[1] / 'runs.db'}"), tuned, data


def test_a_pretrained_model_scores_its_runs_zero_shot_baseline(tuned_run, tmp_path):
    run_dir, model, data = tuned_run
    recorded = GenerationFolder(run_dir, "replace", 0, 0).read_metrics().values()
    doc = evaluate_model(model_config(str(model), "qa", "jsonl", path=str(data), test_size=10, metrics=QA), tmp_path / "out")
    assert doc.test_examples == 10
    for name in QA:
        assert doc.metrics[name].value == pytest.approx(recorded[f"zero_shot_{name}"], abs=1e-9), name
    assert recorded["zero_shot_exact_match"] > 0 and recorded["zero_shot_no_ans_accuracy"] > 0  # not a match of zeros
    # the predictions file holds the same questions a generation's does, one row each
    own = read_parquet(tmp_path / "out/predictions.parquet").to_pydict()
    generation = read_parquet(GenerationFolder(run_dir, "replace", 0, 0).predictions).to_pydict()
    assert own["example_id"] == generation["example_id"] and len(own["example_id"]) == 10
    written = json.loads((tmp_path / "out/metrics.json").read_text())
    assert written["model"] == str(model) and written["generation"] is None


def test_a_runs_generation_on_its_own_test_set_gives_its_own_metrics(qa_run, tmp_path):
    run_dir, _, data, _ = qa_run
    folder = GenerationFolder(run_dir, "replace", 0, 0)
    cfg, source = generation_config(run_dir, "replace", 0)
    doc = evaluate_model(cfg, tmp_path / "same", source=source)
    recorded = folder.read_metrics().values()
    assert {n: doc.metrics[n].value for n in QA} == pytest.approx({n: recorded[n] for n in QA})
    own = read_parquet(tmp_path / "same/predictions.parquet").to_pydict()
    assert own["prediction"] == read_parquet(folder.predictions).to_pydict()["prediction"]
    assert doc.generation == {"run": str(run_dir), "arm": "replace", "seed": 0, "generation": 0}
    # another test set: the same model on more questions
    cfg, source = generation_config(run_dir, "replace", 0, test_size=20)
    assert evaluate_model(cfg, tmp_path / "more", source=source).test_examples == 20


def test_the_command_prints_the_metrics_and_writes_the_folder(tuned_run, tmp_path):
    run_dir, base, data = tuned_run
    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["evaluate", str(base), "--task", "qa", "--dataset", "jsonl", "--data-path", str(data),
                                   "--test-size", "10", "--metrics", ",".join(QA), "--out", str(out)])
    assert res.exit_code == 0, res.output
    recorded = GenerationFolder(run_dir, "replace", 0, 0).read_metrics().values()
    assert f"{recorded['zero_shot_f1']:.4f}" in res.output and "10 test examples" in res.output
    assert {p.name for p in out.iterdir()} == {"predictions.parquet", "metrics.json", "config.yaml"}


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "qa", "--dataset", "jsonl"], "give a MODEL"),
    (["m", "--dataset", "jsonl"], "--task and --dataset"),
    (["m", "--task", "qa", "--dataset", "jsonl", "--arm", "a"], "these go with --run"),
])
def test_the_command_refuses_what_does_not_fit_together(args, message):
    res = CliRunner().invoke(app, ["evaluate", *args])
    assert res.exit_code == 2 and message in res.output


def test_a_generation_that_kept_no_model_is_refused_by_name(qa_run):
    run_dir, _, _, _ = qa_run
    with pytest.raises(RunError, match="--generation 3: .* holds no saved model"):
        generation_config(run_dir, "replace", 3)
    with pytest.raises(RunError, match="--arm 'other'"):
        generation_config(run_dir, "other", 0)



def test_a_scratch_lm_generation_is_scored_with_its_own_tokenizer_as_its_run_scored_it(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=1)
    cfg["arms"] = [cfg["arms"][0]]
    cfg["evaluation"] = {"metrics": ["perplexity", "cross_entropy"]}
    run_dir = run_experiment(config_from_dict(cfg), db_url=f"sqlite:///{tmp_path / 'runs.db'}")
    recorded = GenerationFolder(run_dir, "replace", 0, 0).read_metrics().values()
    config, source = generation_config(run_dir, "replace", 0)
    doc = evaluate_model(config, tmp_path / "lm", source=source)
    assert set(doc.metrics) == {"perplexity", "cross_entropy"}
    assert doc.metrics["perplexity"].value == pytest.approx(recorded["perplexity"], rel=1e-6)
    assert doc.metrics["cross_entropy"].value == pytest.approx(recorded["cross_entropy"], rel=1e-6)

"""One checker above the tasks: every problem of a config, each naming its key, in one run."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tiny import tiny_config, write_config
from typer.testing import CliRunner

import collapselab
from collapselab.checks import check_experiment, config_problems
from collapselab.cli import app
from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import EXIT_BAD_INPUT, ConfigErrors

# Three independent mistakes of an lm config: a task-specific one, early stopping the task
# cannot score (with patience on), and a generation-0 data builder the task does not have.
THREE_MISTAKES = [
    "arms.0.data: task 'lm' has no 'contaminated' data builder",
    "data.prompt_tokens: 32 must not exceed data.block_tokens 16",
    "training.early_stopping_patience: 2: the lm task has no validation split or loss weights",
    "training.early_stopping_metric: 'f1': the lm task has no validation split or loss weights",
]


def _three_mistakes(tmp_path) -> dict:
    cfg = tiny_config(tmp_path / "no-data-here", tmp_path / "runs")
    cfg["data"]["prompt_tokens"] = 32  # > block_tokens 16
    cfg["training"].update(early_stopping_metric="f1", early_stopping_patience=2)
    cfg["arms"][0]["data"] = "contaminated"
    return cfg


def test_config_validate_prints_every_problem_in_one_run(tmp_path):
    path = write_config(_three_mistakes(tmp_path), tmp_path / "x.yaml")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert (result.exit_code, result.stdout) == (EXIT_BAD_INPUT, "")
    assert result.stderr.splitlines() == [f"error: {path}: 4 problems", *(f"error: {p}" for p in THREE_MISTAKES)]
    shown = CliRunner().invoke(app, ["config", "show", str(path)])  # show prints only a config that passes
    assert shown.exit_code == EXIT_BAD_INPUT and shown.stderr == result.stderr


def test_one_problem_is_one_line_with_its_file(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "runs")
    cfg["arms"][1]["data"] = "synthetic"
    path = write_config(cfg, tmp_path / "one.yaml")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr == f"error: {path}: arms.1.data: task 'lm' has no 'synthetic' data builder\n"


def test_the_api_refuses_every_problem_before_any_data_is_read(tmp_path):
    with pytest.raises(ConfigErrors) as raised:
        collapselab.run(_three_mistakes(tmp_path))  # its data folder does not exist
    assert raised.value.problems == THREE_MISTAKES and raised.value.source is None
    assert str(raised.value) == "4 problems: " + "; ".join(THREE_MISTAKES)
    assert not (tmp_path / "runs").exists()


def test_the_engine_adds_what_the_data_says_to_what_the_config_says(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs")
    cfg["evaluation"]["metrics"] = ["perplexity", "perplexty"]
    cfg["arms"] = [{"name": "r", "mix": "ratio", "ratio": 0.5, "size": 100}]
    with pytest.raises(ConfigErrors) as raised:
        run_experiment(config_from_dict(cfg))
    unknown, size = raised.value.problems
    assert unknown.startswith("evaluation.metrics.1: unknown metric 'perplexty'")
    assert size.startswith("arms.0.size: 100 at ratio 0.5 needs more than the ")
    assert not (tmp_path / "runs").exists()


def test_positions_are_checked_when_the_model_is_known(tmp_path):
    cfg = config_from_dict(tiny_config(tmp_path, tmp_path / "runs"))  # blocks of 16, continuations of 16
    assert config_problems(cfg) == []
    check_experiment(cfg, max_positions=32)  # fits exactly
    with pytest.raises(ConfigErrors) as raised:
        check_experiment(cfg, max_positions=31)
    assert raised.value.problems == ["data.block_tokens: a prompt plus its continuation (32 tokens: data.block_tokens 16 + "
                                     "data.block_tokens 16) exceeds the model's 31 positions",
                                     "training.seq_len: 32 exceeds the model's 31 positions"]  # a training block of 32 does not fit either


def test_the_schema_imports_no_task():
    code = "import sys, collapselab.config; print(sorted(m for m in sys.modules if m.startswith('collapselab.tasks')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_a_one_record_pool_and_a_short_test_set_are_refused_before_the_run(tmp_path):
    # Once: exit 1 mid-run (self-BLEU needs two texts; no test block to score).
    data = tmp_path / "data"
    data.mkdir()
    # one block of 16 tokens each under the BPE trained on the training text
    (data / "train.jsonl").write_text('{"id": "a", "text": "The cat saw the red ball in the morning and it was happy. The dog saw it too."}\n')
    (data / "test.jsonl").write_text('{"id": "b", "text": "A dog found a big tree."}\n')
    cfg = tiny_config(data, tmp_path / "runs")
    del cfg["data"]["train_size"], cfg["data"]["test_size"]  # all there is
    cfg["evaluation"]["gibberish_background"] = None
    with pytest.raises(ConfigErrors) as raised:
        run_experiment(config_from_dict(cfg))
    train, test = raised.value.problems
    assert train == "data.train_size: the human training pool holds 1 record; a generation needs at least 2"
    assert test.startswith("data.test_size: the test text (1 blocks) holds fewer than training.seq_len 32 tokens")
    assert not (tmp_path / "runs").exists()


def test_a_scratch_shape_that_cannot_be_built_is_refused_before_the_run(tiny_lm_data, tmp_path):
    # Once: a transformers traceback after the run directory existed.
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs")
    cfg["model"]["scratch"].update(d_model=30, n_heads=4)
    with pytest.raises(ConfigErrors, match=r"^model.scratch.n_heads: 4 heads do not divide model.scratch.d_model 30"):
        collapselab.run(cfg)
    cfg["model"]["scratch"].update(d_model=34, n_heads=2)  # 17 dims a head: llama's rotary positions need an even number
    with pytest.raises(ConfigErrors, match=r"^model.scratch.n_heads: 2 heads of model.scratch.d_model 34 get 17 dims each"):
        collapselab.run(cfg)
    assert not (tmp_path / "runs").exists()


def test_schema_problems_are_one_line_each_too(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "runs")
    cfg["training"]["lr"] = 5
    cfg["data"]["block_tokens"] = 4
    cfg["arms"][1]["name"] = "../x"
    path = write_config(cfg, tmp_path / "x.yaml")
    result = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.splitlines() == [
        f"error: {path}: 3 problems",
        "error: data.block_tokens: Input should be greater than or equal to 8 (got 4)",
        "error: training.lr: Input should be less than or equal to 1 (got 5)",
        "error: arms.1.name: String should match pattern '^[A-Za-z0-9_.\\-]+$' (got '../x')",
    ]


def test_model_names_this_machine_cannot_load_offline_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = tiny_config(tmp_path, tmp_path / "runs")
    cfg["evaluation"].update(metrics=None, reference_model="someone/no-such-model")  # the lm defaults score under it
    with pytest.raises(ConfigErrors) as raised:
        check_experiment(config_from_dict(cfg), here=True)
    assert ("evaluation.reference_model: 'someone/no-such-model' is not a catalogue name (smollm2-135m-instruct, gemma-3-270m), "
            "a local folder, a $COLLAPSELAB_MODELS name or a cached hub model, and the hub is off (HF_HUB_OFFLINE=1)") in raised.value.problems
    cfg["evaluation"]["reference_model"] = str(tmp_path)  # a local folder: found
    assert not [p for p in _problems_here(cfg) if p.startswith("evaluation.reference_model")]
    cfg["evaluation"]["reference_model"] = "smollm2-135m-instruct"  # a catalogue name: found (converted when loaded)
    assert not [p for p in _problems_here(cfg) if p.startswith("evaluation.reference_model")]


def _problems_here(cfg: dict) -> list[str]:
    try:
        check_experiment(config_from_dict(cfg), here=True)
    except ConfigErrors as e:
        return e.problems
    return []

"""SelfPlagAI's training extras driven from a config: a validation split, early stopping on a
metric with patience, BERTScore loss weights; and their config keys refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny import tiny_config

from collapselab.checks import check_experiment
from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.errors import CollapselabError, ConfigError
from collapselab.records import read_records
from collapselab.seeds import step_seed
from collapselab.training.early_stopping import validation_split


def _hashed_token_states(texts, **_):
    # A deterministic stand-in for MiniLM's token states ([CLS], one hashed one-hot per word,
    # [SEP]): BERTScore's greedy matching then scores word overlap (the real encoder runs in
    # the metrics' integration test).
    out = []
    for t in texts:
        words = t.lower().split()
        s = np.zeros((len(words) + 2, 64), dtype=np.float32)
        s[0, 0] = s[-1, 1] = 1.0
        for i, w in enumerate(words, 1):
            s[i, 2 + sum(map(ord, w)) % 62] = 1.0
        out.append(s)
    return out


def _selfplag(tiny_qa_data, tmp_path, **training):
    cfg = tiny_config(tiny_qa_data, tmp_path / "runs", generations=2, task="qa")
    cfg["data"] = {"dataset": "jsonl", "path": str(tiny_qa_data), "train_size": 40, "test_size": 8}
    cfg["training"] = {"epochs": 3, "lr": 0.005, "batch_tokens": 256, "seq_len": 32, **training}
    cfg["decoding"] = {"method": "greedy", "max_new_tokens": 6}
    cfg["evaluation"] = {"metrics": ["exact_match", "f1"]}
    cfg["arms"] = [{"name": "selfplag", "init": "previous", "mix": "replace"}]
    return cfg


def test_early_stopping_on_bertscore_and_bertscore_weights_from_a_config(tiny_qa_data, tmp_path, monkeypatch):
    import collapselab.metrics.semantic as semantic

    monkeypatch.setattr(semantic, "token_states", _hashed_token_states)
    cfg = _selfplag(tiny_qa_data, tmp_path, validation_share=0.25, eval_every=1, early_stopping_patience=2,
                    early_stopping_metric="bertscore", loss_weights="bertscore_f1")
    run_dir = run_experiment(config_from_dict(cfg))

    gen1 = run_dir / "selfplag/seed-0/gen-1"
    log = json.loads((gen1 / "model/train_log.json").read_text())
    values = [v for _, v in log["validation"]]
    steps = [s for s, _ in log["validation"]]
    # validated after every step on BERTScore F1 of the held-out answers (0..1)
    assert steps == list(range(1, log["steps"] + 1)) and all(0 <= v <= 1 for v in values)
    # the weights held: the first best validation; patience 2 after it, or the planned end
    assert log["best_step"] == steps[values.index(max(values))]
    if log["stopped_early"]:
        assert log["steps"] == log["best_step"] + 2
    # gen 1 trains on gen 0's answers weighted by their BERTScore F1 against the human answers,
    # over the records the seeded split kept (a quarter held out)
    records = read_records(gen1 / "train.parquet")
    human = {r.id: r for r in read_records(run_dir / "selfplag/seed-0/gen-0/train.parquet")}
    kept, held = validation_split(len(records), 0.25, step_seed(0, 1, "train"))
    assert len(held) == 10 and all(r.source == "synthetic" for r in records)
    scores = semantic.bertscore_f1([records[i].answers[0] if records[i].answers else "" for i in kept],
                                   [list(human[records[i].parent_id].answers) for i in kept])
    assert log["mean_loss_weight"] == pytest.approx(sum(scores) / len(scores), rel=1e-6)
    assert 0 < log["mean_loss_weight"] < 1


def test_early_stopping_on_the_validation_loss_from_a_config(tiny_qa_data, tmp_path):
    # min_delta 0.3: the loss keeps falling, but by less than that after a few validations
    cfg = _selfplag(tiny_qa_data, tmp_path, validation_share=0.2, early_stopping_patience=1, eval_every=2,
                    early_stopping_min_delta=0.3)
    run_dir = run_experiment(config_from_dict(cfg))
    log = json.loads((run_dir / "selfplag/seed-0/gen-1/model/train_log.json").read_text())
    steps, values = zip(*log["validation"], strict=True)
    assert list(steps) == list(range(2, log["steps"] + 1, 2)) and all(v > 0 for v in values)
    # every validation but the last gained more than 0.3 on the one before; patience 1: the
    # first that did not is the last, and the one before it holds the weights kept
    gains = [a - b for a, b in zip(values, values[1:], strict=False)]
    assert log["stopped_early"] and all(g > 0.3 for g in gains[:-1]) and gains[-1] <= 0.3
    assert log["best_step"] == steps[-2] == log["steps"] - 2
    assert log["mean_loss_weight"] is None


@pytest.mark.parametrize(
    ("task", "training", "arm", "message"),
    [
        ("qa", {"early_stopping_patience": 2}, {}, r"training.early_stopping_patience: 2 needs training.validation_share > 0"),
        ("qa", {"early_stopping_metric": "f1"}, {}, r"training.early_stopping_metric: 'f1' needs training.validation_share > 0"),
        ("qa", {"loss_weights": "bertscore_f1"}, {"data": "synthetic"}, r"training.loss_weights: .*arms.0.data 'synthetic'"),
        ("qa", {"loss_weights": "bert"}, {}, r"training.loss_weights: Input should be 'uniform' or 'bertscore_f1'"),
        ("lm", {"validation_share": 0.1}, {}, r"training.validation_share: 0.1: the lm task has no validation split"),
    ],
)
def test_training_extras_are_refused_by_their_key(tiny_qa_data, tmp_path, task, training, arm, message):
    cfg = _selfplag(tiny_qa_data, tmp_path, **training)
    cfg["experiment"]["task"] = task
    cfg["arms"][0].update(arm)
    if task == "lm":
        cfg["evaluation"] = {"metrics": ["perplexity"]}
    with pytest.raises(ConfigError, match=message):
        check_experiment(config_from_dict(cfg))


@pytest.mark.parametrize(
    ("metric", "message"),
    [("bleurt", r"training.early_stopping_metric: unknown metric 'bleurt'"),
     ("perplexity", r"training.early_stopping_metric: 'perplexity' is a lm metric"),
     ("synthetic_success_rate", r"training.early_stopping_metric: 'synthetic_success_rate' needs \['synthetic'\]")],
)
def test_an_early_stopping_metric_the_split_cannot_give_is_refused_before_training(tiny_qa_data, tmp_path, metric, message):
    cfg = _selfplag(tiny_qa_data, tmp_path, validation_share=0.2, early_stopping_patience=1, early_stopping_metric=metric)
    with pytest.raises(CollapselabError, match=message):
        run_experiment(config_from_dict(cfg))
    assert not list((tmp_path / "runs").rglob("model.safetensors"))  # refused before any training

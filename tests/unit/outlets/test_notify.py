"""Notifications: the default metrics exist, `notify.metrics` is checked against the registry
before a run starts, and the run's first message lists its key parameters."""

from __future__ import annotations

import pytest

from collapselab.checks import config_problems
from collapselab.config import config_from_dict
from collapselab.config.operations import NotifyBlock
from collapselab.lab.events import GenerationFinished, RunStarted
from collapselab.metrics.registry import metric_info
from collapselab.outlets.notify import KEY_METRICS, Notifier


def _config(task: str = "qa", **notify):
    return config_from_dict({
        "experiment": {"name": "x", "task": task, "generations": 3, "seeds": [0, 1]},
        "data": {"dataset": "squad_v2", "train_size": 200, "test_size": 120},
        "model": {"name": "smollm2-135m-instruct", "lora": {"r": 16}},
        "decoding": {"method": "greedy"},
        "arms": [{"name": "replace"}, {"name": "half", "mix": "ratio", "ratio": 0.5}],
        "notify": {"webhook": {"url": "http://127.0.0.1:9/hook"}, **notify},
    })


def test_every_default_metric_of_a_message_is_a_registered_metric():
    for name in KEY_METRICS:
        assert metric_info(name).name == name


@pytest.mark.parametrize(("names", "problems"), [
    (["exact_match", "zero_shot_f1", "collapse_stage", "mmlu_accuracy", "mmlu_accuracy.group.stem"], []),
    (["accuracy"], ["notify.metrics.0: unknown metric 'accuracy'; did you mean 'mmlu_accuracy'?"]),
    (["f1", "colapse_stage"], ["notify.metrics.1: unknown metric 'colapse_stage'; did you mean 'collapse_stage'?"]),
    (["perplexity"], ["notify.metrics.0: 'perplexity' is a lm metric, this is a qa experiment"]),
])
def test_notify_metrics_are_checked_against_the_registry(names, problems):
    assert [p for p in config_problems(_config(metrics=names)) if p.startswith("notify.")] == problems


def _sent(notifier: Notifier, monkeypatch) -> list[str]:
    texts: list[str] = []
    monkeypatch.setattr(notifier, "_post", lambda url, payload: texts.append(payload["text"]) or b"")
    return texts


def test_the_first_message_lists_the_runs_key_parameters_and_the_default_metrics_shown(tmp_path, monkeypatch):
    cfg = _config()
    notifier = Notifier(cfg.notify, print)
    texts = _sent(notifier, monkeypatch)
    notifier(RunStarted(tmp_path, "run-1", "x", cfg, resumed=False))
    notifier(GenerationFinished(tmp_path, "replace", 0, 0, tmp_path, {"exact_match": 40.0, "f1": 45.5, "rouge1": 0.3, "has_ans_f1": 20.0}))
    notifier.close()
    assert texts[0] == ("collapselab x/run-1: run started: task qa, model smollm2-135m-instruct + LoRA, data squad_v2 (train 200, test 120), "
                        "3 generations, seeds 0, 1, arms replace (previous, replace); half (previous, ratio 0.5), "
                        "training 1 epoch lr 0.0005, decoding greedy")
    assert texts[1] == "collapselab x/run-1: replace seed 0 generation 0 finished: exact_match 40, f1 45.5, has_ans_f1 20"


def test_the_start_message_is_sent_even_when_progress_messages_are_capped(tmp_path, monkeypatch):
    block = NotifyBlock.model_validate({"webhook": {"url": "http://127.0.0.1:9/hook"}, "max_messages": 1})
    notifier = Notifier(block, print)
    texts = _sent(notifier, monkeypatch)
    notifier(RunStarted(tmp_path, "run-1", "x", _config(), resumed=True))
    for g in (0, 1):
        notifier(GenerationFinished(tmp_path, "replace", 0, g, tmp_path, {"f1": 1.0}))
    notifier.close()
    assert texts[0].startswith("collapselab x/run-1: run resumed: task qa") and len(texts) == 2

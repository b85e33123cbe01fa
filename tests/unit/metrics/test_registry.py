"""One registry for every number the lab writes: the metrics `evaluate` computes and those the
engine or a task computes itself (MMLU accuracies, the unigram and zero-shot baselines, the
collapse stage) all carry a registered direction, version, description and label, and their
metrics.json entries take version and direction from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import save_chat_model, tiny_config, tiny_reference

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.metrics import all_metrics, entry, metric_info
from collapselab.metrics.registry import computed_metrics, display, metric_label, register_computed
from collapselab.tasks import get_task


def test_a_family_member_is_the_family_under_its_own_name_and_label():
    m = metric_info("mmlu_few_shot_accuracy.group.social_sciences")
    assert (m.name, m.label, m.unit, m.version, m.higher_is_better) == (
        "mmlu_few_shot_accuracy.group.social_sciences", "MMLU accuracy (few_shot), social_sciences", "0-1", "1", True)
    assert metric_info("mmlu_accuracy.subject.anatomy").label == "MMLU accuracy, anatomy"
    assert metric_label("zero_shot_f1") == "zero-shot F1 (%)"
    with pytest.raises(KeyError, match="mmlu_cloze_accuracy"):  # not a format: no family holds it
        metric_info("mmlu_cloze_accuracy")
    assert display("a_metric_of_another_version") == ("a_metric_of_another_version", "")  # shown as itself


def test_an_entry_takes_version_and_direction_from_the_registry():
    assert entry("collapse_stage", 1.0, {"stage": "B"}) == {
        "value": 1.0, "version": "1", "higher_is_better": False, "details": {"stage": "B"}}
    assert entry("zero_shot_has_ans_f1", 50.0, {})["version"] == all_metrics()["has_ans_f1"].version == "2"
    with pytest.raises(KeyError, match="not_registered"):
        entry("not_registered", 1.0, {})


def test_every_metric_has_a_label_and_a_description_and_names_are_unique():
    for m in [*all_metrics().values(), *computed_metrics().values()]:
        assert m.label and m.description, m.name
    with pytest.raises(ValueError, match="registered twice"):
        register_computed("perplexity", higher_is_better=False, version="1", description="again", label="again",
                          computed_by="a test")


def test_the_tasks_say_which_metrics_apply_to_them():
    lm, qa = get_task("lm"), get_task("qa")
    assert lm.scores(all_metrics()["perplexity"]) and not qa.scores(all_metrics()["perplexity"])
    assert qa.scores(all_metrics()["exact_match"]) and not lm.scores(all_metrics()["exact_match"])
    assert lm.scores(all_metrics()["distinct_2"]) and qa.scores(all_metrics()["distinct_2"])
    for task in (lm, qa):
        assert all(task.scores(all_metrics()[n]) for n in (*task.default_metrics, *task.reference_metrics, *task.yardstick_metrics))


def _written(run_dir: Path) -> dict[str, list[dict]]:
    """metric name -> its entries in every metrics.json (and run_metrics.json) of the run."""
    out: dict[str, list[dict]] = {}
    for path in [*sorted(run_dir.glob("*/seed-*/gen-*/metrics.json")), *run_dir.glob("run_metrics.json")]:
        for name, e in json.loads(path.read_text())["metrics"].items():
            out.setdefault(name, []).append(e)
    return out


def _assert_registered(written: dict[str, list[dict]]) -> None:
    for name, found in written.items():
        m = metric_info(name)  # KeyError: a number the registry does not know
        assert m.label and m.description, name
        assert {(e["version"], e["higher_is_better"]) for e in found} == {(m.version, m.higher_is_better)}, name


def _mmlu(root: Path) -> Path:
    rows = {"abstract_algebra": [("What is 2 + 2?", "3", "4", "5", "6", "B"), ("What is 3 * 3?", "9", "6", "3", "12", "A")],
            "philosophy": [("Who wrote the Republic?", "Plato", "Kant", "Hume", "Locke", "A")]}
    for split in ("test", "dev"):
        (root / split).mkdir(parents=True)
        for subject, qs in rows.items():
            (root / split / f"{subject}_{split}.csv").write_text("".join(",".join(q) + "\n" for q in qs))
    return root


def test_every_metric_an_lm_run_with_mmlu_and_a_reference_writes_is_registered(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    cfg["arms"] = cfg["arms"][:1]
    lm = get_task("lm")
    cfg["evaluation"] = {  # the lm defaults (but the gibberish score: too little text to calibrate it), the external
        # reference's metrics (its yardstick once per run), MMLU in two formats
        "metrics": [n for n in (*lm.default_metrics, *lm.reference_metrics) if not n.startswith("gibberish")],
        "reference_model": str(tiny_reference(tmp_path / "reference")), "reference_sequences": 8,
        "mmlu": {"subjects": ["abstract_algebra", "philosophy"], "formats": ["zero_shot", "few_shot"], "path": str(_mmlu(tmp_path / "mmlu"))},
    }
    written = _written(run_experiment(config_from_dict(cfg)))
    expected = {"perplexity", "unigram_perplexity", "external_synthetic_perplexity", "external_test_perplexity", "collapse_stage",
                "mmlu_accuracy", "mmlu_accuracy.group.STEM", "mmlu_accuracy.subject.philosophy", "mmlu_few_shot_accuracy",
                "mmlu_few_shot_accuracy.subject.abstract_algebra", "self_bleu"}
    assert expected <= set(written)
    _assert_registered(written)


def test_every_metric_a_qa_run_from_a_pretrained_model_writes_is_registered(tiny_qa_data, tmp_path):
    cfg = tiny_config(tiny_qa_data, tmp_path / "runs", generations=1, task="qa")
    cfg["data"] = {"dataset": "jsonl", "path": str(tiny_qa_data), "train_size": 12, "test_size": 6}
    cfg["model"] = {"name": str(save_chat_model(tmp_path / "base", chat=False))}  # not scratch: a zero-shot baseline
    cfg["training"] = {"epochs": 1, "lr": 0.005, "batch_tokens": 1024}
    cfg["decoding"] = {"method": "greedy", "max_new_tokens": 4}
    cfg["evaluation"] = {"metrics": ["exact_match", "f1", "has_ans_f1", "no_ans_accuracy", "answer_length", "distinct_2"]}
    cfg["arms"] = [{"name": "selfplag", "init": "previous", "mix": "replace"}]
    written = _written(run_experiment(config_from_dict(cfg)))
    assert {"zero_shot_exact_match", "zero_shot_f1", "zero_shot_has_ans_f1", "zero_shot_no_ans_accuracy", "collapse_stage",
            "f1", "distinct_2"} <= set(written)
    _assert_registered(written)

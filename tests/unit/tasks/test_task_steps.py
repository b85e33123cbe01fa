"""Correctness of the loop's parts found by reading the code (issue: one direction of flow).

Each test fails on the old behaviour: per-example scores attached by list length, synthetic
continuations packed into one attention stream, a contaminated arm mixing in human data,
a hard-coded QA answer length.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
import torch
from tiny import llama, tiny_config

from collapselab.config import PromptsBlock, TrainingBlock, config_from_dict
from collapselab.engine import run_experiment
from collapselab.records import Record, read_records
from collapselab.rundir.metrics_file import read_metrics_file


def test_per_example_scores_are_attached_by_id_never_by_length(tiny_lm_data, tmp_path):
    # 4 synthetic continuations and 4 packed test blocks: equal lengths, different examples.
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=1)
    cfg["data"].update(train_size=4, test_size=8)
    cfg["evaluation"]["metrics"] = ["perplexity", "synthetic_perplexity"]
    cfg["arms"] = cfg["arms"][:1]
    run_dir = run_experiment(config_from_dict(cfg))
    g0 = run_dir / "replace/seed-0/gen-0"
    rows = pq.read_table(g0 / "predictions.parquet").to_pylist()
    synthetic = read_records(g0 / "synthetic.parquet")
    assert len(rows) == len(synthetic) == 4  # the trap the old code fell into
    assert all(set(json.loads(r["scores"])) == {"perplexity"} for r in rows)
    per_record = {r["record_id"]: json.loads(r["scores"]) for r in pq.read_table(g0 / "synthetic_scores.parquet").to_pylist()}
    assert set(per_record) == {r.id for r in synthetic}
    median = read_metrics_file(g0 / "metrics.json").metrics["synthetic_perplexity"].value
    values = sorted(v["synthetic_perplexity"] for v in per_record.values())
    assert median == pytest.approx((values[1] + values[2]) / 2)


def _tiny_llama(vocab: int = 40):
    return llama(vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                 max_position_embeddings=64, tie_word_embeddings=False)


def _nll(model, ids: list[int]) -> tuple[float, int]:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, :-1]
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum")), len(ids) - 1


def test_synthetic_sequences_train_apart_from_each_other():
    from collapselab.training.loop import train_lm

    eos = 1
    sequences = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16]]
    recipe = TrainingBlock(max_steps=1, lr=1e-9, batch_tokens=64, seq_len=16, warmup_ratio=0.0)
    model = _tiny_llama()
    # The first step's loss is computed before any update: the mean NLL of every target,
    # each sequence scored on its own after an EOS.
    expected = [_nll(model, [eos, *s]) for s in sequences]
    packed = _nll(model, [eos] + [t for s in sequences for t in s])
    result = train_lm(model, [], recipe, eos_id=eos, seed=0, sequences=sequences, progress=False)
    own = sum(n for n, _ in expected) / sum(c for _, c in expected)
    assert result.losses[0] == pytest.approx(own, rel=1e-5)
    assert result.losses[0] != pytest.approx(packed[0] / packed[1], rel=1e-3)  # not one running stream


def test_lm_task_packs_human_text_and_separates_generated_text():
    from collapselab.tasks.lm import LMTask

    calls = {}

    class Tok:
        eos_token_id = 1

        def __call__(self, texts, add_special_tokens=False):
            return {"input_ids": [[len(t)] * 2 for t in texts]}

    def fake_train_lm(model, docs, recipe, *, eos_id, seed, sequences, desc):
        calls.update(docs=docs, sequences=sequences)

    records = [Record(id="h1", text="ab"), Record(id="h2", text="abc"),
               Record(id="s1", source="synthetic", generation=0, text="abcd")]
    lab = SimpleNamespace(tokenizer=Tok())
    import collapselab.training.loop as training

    original = training.train_lm
    training.train_lm = fake_train_lm
    try:
        LMTask().train(lab, None, records, TrainingBlock(), 0, "t")
    finally:
        training.train_lm = original
    assert calls["docs"] == [[2, 2, 3, 3]]  # the human blocks as one running stream
    assert calls["sequences"] == [[4, 4]]  # each continuation alone


def test_a_contaminated_arm_keeps_mixing_its_own_generation0_data(tmp_path):
    from refinery.qa_fixtures import three_arm_config, write_tiny_qa

    cfg = three_arm_config(write_tiny_qa(tmp_path / "data", n_train=20, n_test=6), tmp_path / "runs")
    cfg["experiment"]["generations"] = 2
    cfg["data"].update(train_size=20, test_size=6)
    cfg["arms"] = [{"name": "B-contaminated", "data": "contaminated", "mix": "accumulate"}]
    run_dir = run_experiment(config_from_dict(cfg))
    g0 = read_records(run_dir / "B-contaminated/seed-0/gen-0/train.parquet")
    g1 = read_records(run_dir / "B-contaminated/seed-0/gen-1/train.parquet")
    assert {r.source for r in g0} == {"contaminated"}
    assert [r.id for r in g1[: len(g0)]] == [r.id for r in g0]  # the arm's own data_0 is its "real" pool
    assert not any(r.source == "human" for r in g1)
    assert sum(r.source == "synthetic" for r in g1) == len(g0)


def test_qa_answer_length_comes_from_the_config(tmp_path):
    from collapselab.models.loading import train_tokenizer
    from collapselab.models.prompts import prompt_format
    from collapselab.tasks.qa import training_pairs

    tok = train_tokenizer(["Context: the cat sat on the mat with a very long answer indeed"] * 20, 300)
    n = 3
    lab = SimpleNamespace(prompt_format=prompt_format(tok, PromptsBlock()), max_positions=64, max_new_tokens=n)
    long = Record(id="q", context="the cat sat on the mat", question="what?", answers=("a very long answer indeed",))
    (_, target), = training_pairs(lab, [long])
    assert len(target) == n + 1 and target[-1] == tok.eos_token_id


def test_new_tokens_per_record_are_the_decoding_setting_else_the_task_default(tmp_path):
    from collapselab.tasks import get_task

    raw = tiny_config(tmp_path, tmp_path / "runs")  # blocks of 16 tokens
    lm, qa = get_task("lm"), get_task("qa")
    cfg = config_from_dict(raw)
    assert (lm.max_new_tokens(cfg), qa.max_new_tokens(cfg)) == (16, 32)  # a block; an answer
    raw["decoding"]["max_new_tokens"] = 5
    cfg = config_from_dict(raw)
    assert (lm.max_new_tokens(cfg), qa.max_new_tokens(cfg)) == (5, 5)


def _mmlu_folder(root: Path) -> Path:
    rows = {
        "abstract_algebra": [("What is 2 + 2?", "3", "4", "5", "6", "B"), ("What is 3 * 3?", "9", "6", "3", "12", "A"),
                             ("What is 10 - 7?", "2", "4", "3", "1", "C"), ("Is 7 prime?", "no", "maybe", "never", "yes", "D")],
        "philosophy": [("Who wrote the Republic?", "Plato", "Kant", "Hume", "Locke", "A"),
                       ("Who wrote the Critique of Pure Reason?", "Hume", "Kant", "Plato", "Mill", "B"),
                       ("Who wrote Leviathan?", "Locke", "Hume", "Hobbes", "Kant", "C")],
    }
    for split in ("test", "dev"):
        (root / split).mkdir(parents=True)
        for subject, qs in rows.items():
            lines = qs if split == "test" else qs[:1]
            (root / split / f"{subject}_{split}.csv").write_text("".join(",".join(q) + "\n" for q in lines))
    return root


def test_mmlu_from_the_config_lands_in_metrics_results_and_report(tiny_lm_data, tmp_path):
    from typer.testing import CliRunner

    from collapselab.cli import app

    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    cfg["arms"] = cfg["arms"][:1]
    cfg["evaluation"]["mmlu"] = {"subjects": ["abstract_algebra", "philosophy"], "per_subject": 3,
                                 "formats": ["zero_shot", "few_shot"], "path": str(_mmlu_folder(tmp_path / "mmlu"))}
    run_dir = run_experiment(config_from_dict(cfg))
    for g in (0, 1):
        m = read_metrics_file(run_dir / f"replace/seed-0/gen-{g}/metrics.json").metrics
        assert m["mmlu_accuracy"].details["n"] == 6  # 3 per subject
        parts = [m["mmlu_accuracy.subject.abstract_algebra"].value, m["mmlu_accuracy.subject.philosophy"].value]
        assert m["mmlu_accuracy"].value == pytest.approx(sum(parts) / 2)
        assert m["mmlu_accuracy.group.STEM"].value == parts[0] and m["mmlu_accuracy.group.humanities"].value == parts[1]
        assert "mmlu_few_shot_accuracy" in m
        assert m["collapse_stage"].details["stage"] in "ABC" and m["collapse_stage"].details["accuracy"] == "mmlu_accuracy"
    result = CliRunner().invoke(app, ["results", str(run_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {"mmlu_accuracy", "mmlu_accuracy.group.STEM", "collapse_stage"} <= set(rows[0])
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    md = (tmp_path / "report/report.md").read_text()
    assert "Knowledge retention and collapse stages" in md and "| `replace` | humanities |" in md
    assert re.search(r"\| `replace` \| 0 \| 1 \| \*\*[ABC]\*\* \|", md)  # generation 1's stage

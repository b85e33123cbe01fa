"""`collapselab score` on a tiny SQuAD file: official keys, values worked by hand, loud errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from collapselab.cli import app

DATA = {
    "version": "v2.0",
    "data": [{
        "title": "T",
        "paragraphs": [{
            "context": "The Normans lived in Normandy in France.",
            "qas": [
                {"id": "q1", "question": "Where?", "answers": [{"text": "Normandy", "answer_start": 21}], "is_impossible": False},
                {"id": "q2", "question": "Who?", "answers": [{"text": "The Normans", "answer_start": 0}], "is_impossible": False},
                {"id": "q3", "question": "When?", "answers": [], "is_impossible": True},
            ],
        }],
    }],
}


def _write(tmp_path, preds):
    (tmp_path / "dev.json").write_text(json.dumps(DATA))
    (tmp_path / "preds.json").write_text(json.dumps(preds))


def test_score_prints_every_qa_metric(tmp_path):
    _write(tmp_path, {"q1": "in Normandy", "q2": "Normans", "q3": ""})
    res = CliRunner().invoke(app, ["score", "--data-file", str(tmp_path / "dev.json"),
                                   "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    # q1: EM 0, F1 = 2*(1/2*1)/(3/2) = 2/3; q2: EM 1 (article dropped), F1 1; q3: no-answer right.
    assert out["exact"] == pytest.approx(200 / 3)
    assert out["f1"] == pytest.approx(100 * (2 / 3 + 1 + 1) / 3)
    assert out["HasAns_total"] == 2 and out["NoAns_total"] == 1 and out["NoAns_exact"] == 100.0
    for key in ("rouge1", "rouge2", "rougeL", "jaccard", "answer_in_context", "answer_length", "metric_versions"):
        assert key in out
    assert out["answer_in_context"] == pytest.approx(1.0)


def test_missing_prediction_is_an_error(tmp_path):
    _write(tmp_path, {"q1": "Normandy"})
    res = CliRunner().invoke(app, ["score", "--data-file", str(tmp_path / "dev.json"),
                                   "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 2 and res.stdout == ""
    assert res.stderr == f"error: {tmp_path / 'preds.json'}: no prediction for 2 of 3 questions, e.g. ['q2', 'q3']\n"


def test_dataset_accepts_a_file_and_reads_hf_style_answers(tmp_path):
    # --dataset FILE: official SQuAD JSON, or records in JSON Lines; answers in the Hugging
    # Face form {"text": [...], "answer_start": [...]} are the texts, not the dict's two keys.
    _write(tmp_path, {"q1": "Normandy", "q2": "text", "q3": ""})
    qas = DATA["data"][0]["paragraphs"][0]["qas"]
    with (tmp_path / "dev.jsonl").open("w") as f:
        for qa in qas:
            answers = {"text": [a["text"] for a in qa["answers"]], "answer_start": [a["answer_start"] for a in qa["answers"]]}
            f.write(json.dumps({"id": qa["id"], "context": "The Normans lived in Normandy in France.",
                                "question": qa["question"], "answers": answers}) + "\n")
    outs = []
    for args in (["--data-file", "dev.json"], ["--dataset", "dev.json"], ["--dataset", "dev.jsonl"]):
        args = [a if a.startswith("--") else str(tmp_path / a) for a in args]
        res = CliRunner().invoke(app, ["score", *args, "--predictions", str(tmp_path / "preds.json")])
        assert res.exit_code == 0, res.output
        outs.append(json.loads(res.stdout))
    # q1 and q3 right, q2 wrong: "text" would only match if the dict's keys were the answers.
    assert [o["exact"] for o in outs] == [pytest.approx(200 / 3)] * 3
    assert outs[2]["data_file"] == str(tmp_path / "dev.jsonl")


def test_dataset_name_resolves_through_collapselab_data(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "squad_v2"
    folder.mkdir(parents=True)
    (folder / "train-v2.0.first10articles.json").write_text(json.dumps({"version": "v2.0", "data": []}))
    (folder / "dev-v2.0.explorer-eval.json").write_text(json.dumps(DATA))
    (tmp_path / "preds.json").write_text(json.dumps({"q1": "Normandy", "q2": "The Normans", "q3": ""}))
    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path / "data"))
    res = CliRunner().invoke(app, ["score", "--dataset", "squad_v2", "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["data_file"] == str(folder / "dev-v2.0.explorer-eval.json") and out["exact"] == 100.0
    monkeypatch.delenv("COLLAPSELAB_DATA")
    monkeypatch.setenv("COLLAPSELAB_OFFLINE", "1")
    res = CliRunner().invoke(app, ["score", "--dataset", "squad_v2", "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 2 and "COLLAPSELAB_DATA is unset" in res.stderr and res.stderr.count("\n") == 1
    res = CliRunner().invoke(app, ["score", "--dataset", "squad_v3", "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 2 and res.stderr.startswith("error: 'squad_v3': neither a dataset name (squad_v2, ")


def test_score_reads_questions_with_the_dataset_loaders_checks(tmp_path):
    # The one SQuAD reader: a question without an id is refused, naming article, paragraph
    # and question position (the old scorer's own reader raised a KeyError here).
    data = json.loads(json.dumps(DATA))
    del data["data"][0]["paragraphs"][0]["qas"][1]["id"]
    (tmp_path / "dev.json").write_text(json.dumps(data))
    (tmp_path / "preds.json").write_text(json.dumps({"q1": "x"}))
    res = CliRunner().invoke(app, ["score", "--dataset", str(tmp_path / "dev.json"), "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 2
    assert res.stderr == f"error: {tmp_path / 'dev.json'}: article 'T' paragraph 0 question 1: missing field 'id'\n"

"""`collapselab score` on a tiny SQuAD file: official keys, values worked by hand, loud errors."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from collapselab.commands import score

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


@pytest.fixture
def app():
    a = typer.Typer()
    score.register(a)

    @a.callback()
    def _root() -> None:  # keep `score` a subcommand, as in the real CLI
        pass

    return a


def _write(tmp_path, preds):
    (tmp_path / "dev.json").write_text(json.dumps(DATA))
    (tmp_path / "preds.json").write_text(json.dumps(preds))


def test_score_prints_every_qa_metric(tmp_path, app):
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


def test_missing_prediction_is_an_error(tmp_path, app):
    _write(tmp_path, {"q1": "Normandy"})
    res = CliRunner().invoke(app, ["score", "--data-file", str(tmp_path / "dev.json"),
                                   "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 2
    assert "no prediction for 2 of 3" in res.output


def test_dataset_file_comes_from_collapselab_data(tmp_path, monkeypatch):
    (tmp_path / "squad_v2").mkdir()
    (tmp_path / "squad_v2" / "dev-v2.0.explorer-eval.json").write_text("{}")
    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path))
    assert score.resolve_data_file("squad_v2", None) == tmp_path / "squad_v2" / "dev-v2.0.explorer-eval.json"
    monkeypatch.delenv("COLLAPSELAB_DATA")
    with pytest.raises(ValueError, match="--data-file or set COLLAPSELAB_DATA"):
        score.resolve_data_file("squad_v2", None)

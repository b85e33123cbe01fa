"""The official SQuAD predictions file (`{id: answer}`) and its alignment with the questions.

The questions themselves are read by the dataset loader (`collapselab.datasets`), the one
SQuAD reader, with all of its field checks; the official EM/F1 computation is
`collapselab.metrics.qa.squad_eval`.
"""

from __future__ import annotations

from pathlib import Path

from collapselab.errors import CollapselabError
from collapselab.records import Record
from collapselab.textio import read_json


class PredictionsError(CollapselabError, ValueError):
    """A predictions file is malformed or does not cover the dataset; names the file and the id."""


def load_predictions(path: str | Path) -> dict[str, str]:
    """A SQuAD predictions file: a JSON object mapping question id to answer ("" = no answer).

    Raises:
        PredictionsError: The file is missing, not UTF-8 JSON, not an object, or an answer
            is not a string; the message names the file and the first bad id.
    """

    path = Path(path)
    preds = read_json(path, error=PredictionsError)
    if not isinstance(preds, dict):
        raise PredictionsError(f"{path}: predictions must be a JSON object of id -> answer string, got a JSON {type(preds).__name__}")
    for qid, answer in preds.items():
        if not isinstance(answer, str):
            raise PredictionsError(f"{path}: prediction for {qid!r} must be a string (\"\" = no answer), got {type(answer).__name__} {answer!r:.60}")
    return preds


def align_predictions(records: list[Record], predictions: dict[str, str], *, where: str) -> list[str]:
    """Predictions in record order; raise naming missing ids (a silent zero would skew scores)."""
    missing = [r.id for r in records if r.id not in predictions]
    if missing:
        raise PredictionsError(f"{where}: no prediction for {len(missing)} of {len(records)} questions, e.g. {missing[:3]}")
    return [predictions[r.id] for r in records]

"""Read SQuAD-format files for scoring: the dataset JSON and a `{id: answer}` predictions file.

This is the metrics' own tiny reader, so scoring never depends on the dataset loaders:
it keeps exactly what the official evaluation reads (`id`, `answers[].text`) plus the
title, context and question.
"""

from __future__ import annotations

import json
from pathlib import Path

from collapselab.records import Record

SQUAD_FILES = {
    "squad_v2": "squad_v2/dev-v2.0.explorer-eval.json",
    "squad_v1.1": "squad_v1.1/dev-v1.1.explorer-eval.json",
}


def load_squad_records(path: str | Path) -> list[Record]:
    """Every question of an official-format SQuAD file as a Record (answers in file order)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: SQuAD file does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an official-format SQuAD file ({e})") from None
    out = []
    for article in data:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                out.append(
                    Record(
                        id=qa["id"],
                        title=article["title"],
                        context=paragraph["context"],
                        question=qa["question"],
                        answers=tuple(a["text"] for a in qa["answers"]),
                    )
                )
    return out


def load_predictions(path: str | Path) -> dict[str, str]:
    """A SQuAD predictions file: a JSON object mapping question id to answer ("" = no answer)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: predictions file does not exist")
    try:
        preds = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg})") from None
    if not isinstance(preds, dict) or not all(isinstance(v, str) for v in preds.values()):
        raise ValueError(f"{path}: predictions must be a JSON object of id -> answer string")
    return preds


def align_predictions(records: list[Record], predictions: dict[str, str], *, where: str) -> list[str]:
    """Predictions in record order; raise naming missing ids (a silent zero would skew scores)."""
    missing = [r.id for r in records if r.id not in predictions]
    if missing:
        raise ValueError(f"{where}: no prediction for {len(missing)} of {len(records)} questions, e.g. {missing[:3]}")
    return [predictions[r.id] for r in records]

"""`collapselab score`: score an external SQuAD predictions file with every QA metric."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

# Every QA metric the command prints; the encoder ones only with --semantic (they load a model).
TEXT_METRICS = ["rouge1", "rouge2", "rougeL", "jaccard", "answer_in_context", "answer_length"]
SEMANTIC_METRICS = ["bertscore", "semantic_similarity"]


def resolve_data_file(dataset: str, data_file: Path | None) -> Path:
    """The explicit file, else $COLLAPSELAB_DATA/<dataset's dev file>; raise naming what is missing."""
    from collapselab.metrics.squad_official import SQUAD_FILES

    if dataset not in SQUAD_FILES:
        raise ValueError(f"--dataset {dataset!r}: expected one of {sorted(SQUAD_FILES)}")
    if data_file is not None:
        return data_file
    root = os.environ.get("COLLAPSELAB_DATA")
    if not root:
        raise ValueError(f"no dataset file: pass --data-file or set COLLAPSELAB_DATA (looked for <COLLAPSELAB_DATA>/{SQUAD_FILES[dataset]})")
    path = Path(root) / SQUAD_FILES[dataset]
    if not path.exists():
        raise ValueError(f"{path}: dataset file does not exist (from COLLAPSELAB_DATA); pass --data-file")
    return path


def score_file(dataset: str, predictions: Path, data_file: Path | None = None, semantic: bool = False) -> dict:
    """Every QA metric of a predictions file, as one flat dict (official keys first)."""
    from collapselab.metrics.qa import squad_eval
    from collapselab.metrics.registry import EvalInputs, evaluate
    from collapselab.metrics.squad_official import (
        align_predictions,
        load_predictions,
        load_squad_records,
    )

    path = resolve_data_file(dataset, data_file)
    records = load_squad_records(path)
    by_id = load_predictions(predictions)
    preds = align_predictions(records, by_id, where=str(predictions))
    out: dict = {"dataset": dataset, "data_file": str(path), "predictions": str(predictions)}
    out.update(squad_eval(preds, [r.answers for r in records]))
    out["unused_predictions"] = len(set(by_id) - {r.id for r in records})
    names = TEXT_METRICS + (SEMANTIC_METRICS if semantic else [])
    results = evaluate(names, EvalInputs(task="qa", test=records, predictions=preds))
    versions = {"exact_match": _version("exact_match"), "f1": _version("f1")}
    for name, res in results.items():
        out[name] = res.value
        versions[name] = res.version
        if name in SEMANTIC_METRICS:
            out[f"{name}_note"] = res.details["note"]
    out["metric_versions"] = versions
    return out


def _version(name: str) -> str:
    from collapselab.metrics.registry import get_metric

    return get_metric(name).version


def score(
    predictions: Annotated[Path, typer.Option("--predictions", help="SQuAD-style JSON {id: answer}; empty string = no answer.")],
    dataset: Annotated[str, typer.Option("--dataset", help="squad_v2 or squad_v1.1.")] = "squad_v2",
    data_file: Annotated[Path | None, typer.Option("--data-file", help="Dataset JSON; default $COLLAPSELAB_DATA/<dataset>/dev-*.json.")] = None,
    semantic: Annotated[bool, typer.Option("--semantic", help="Also BERTScore and semantic similarity (local MiniLM encoder).")] = False,
) -> None:
    """Score a predictions file against a QA dataset and print every QA metric as JSON."""
    try:
        result = score_file(dataset, predictions, data_file, semantic)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    app.command("score")(score)

"""`collapselab score`: score an external SQuAD predictions file with every QA metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

# Every QA metric the command prints; the encoder ones only with --semantic (they load a model).
TEXT_METRICS = ["rouge1", "rouge2", "rougeL", "jaccard", "answer_in_context", "answer_length"]
SEMANTIC_METRICS = ["bertscore", "semantic_similarity"]


def score_file(dataset: str, predictions: Path, data_file: Path | None = None, semantic: bool = False) -> dict:
    """Every QA metric of a predictions file, as one flat dict (official keys first).

    Args:
        dataset: A QA dataset name (its dev/test file, found like `data.dataset`), or a
            file: official-format SQuAD `.json`, or a `.jsonl`/`.csv`/`.parquet` records file.
        predictions: `{id: answer}` JSON.
        data_file: Read this file with `dataset`'s reader instead of resolving the name.
        semantic: Also the encoder metrics (they load a model).
    """
    from collapselab.datasets import DatasetError, load_reference_set
    from collapselab.metrics.qa import squad_eval
    from collapselab.metrics.registry import EvalInputs, evaluate
    from collapselab.metrics.squad_official import align_predictions, load_predictions
    from collapselab.records import require_fields

    records, files = load_reference_set(dataset, data_file)
    where = ", ".join(map(str, files))
    if not records:
        raise DatasetError(f"{where}: no questions to score")
    require_fields(records, ["question"], where=f"{where} (scoring needs QA records)")
    by_id = load_predictions(predictions)
    preds = align_predictions(records, by_id, where=str(predictions))
    out: dict = {"dataset": str(dataset), "data_file": where, "predictions": str(predictions)}
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
    dataset: Annotated[str, typer.Option("--dataset", help="A QA dataset name (squad_v2, squad_v1.1, cosmosqa), or a file: SQuAD .json or a .jsonl/.csv/.parquet records file.")] = "squad_v2",
    data_file: Annotated[Path | None, typer.Option("--data-file", help="Read this file with --dataset's reader; default: the dataset's dev/test file under $COLLAPSELAB_DATA.")] = None,
    semantic: Annotated[bool, typer.Option("--semantic", help="Also BERTScore and semantic similarity (local MiniLM encoder).")] = False,
) -> None:
    """Score a predictions file against a QA dataset and print every QA metric as JSON."""
    result = score_file(dataset, predictions, data_file, semantic)
    typer.echo(json.dumps(result, indent=2))


def register(app: typer.Typer) -> None:
    app.command("score")(score)

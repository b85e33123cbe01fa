"""How every task scores a generation: its metric inputs, the registry's results, and the
per-example scores matched to test examples and synthetic records by id."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from collapselab.models.loading import device
from collapselab.records import Record

if TYPE_CHECKING:
    from collapselab.lab import Lab
    from collapselab.metrics import EvalInputs, MetricResult


def metric_names(lab: Lab, defaults: list[str]) -> list[str]:
    """The metrics of this run: `evaluation.metrics`, else the task's defaults; each checked
    to apply to the run's task (raises ValueError naming the metric)."""
    from collapselab.metrics import metric_for_task

    names = list(lab.cfg.evaluation.metrics or defaults)
    for name in names:
        metric_for_task(name, lab.task)
    return names


def eval_inputs(lab: Lab, model: Any, generation0: Any, synthetic: list[Record] | None, seed: int) -> EvalInputs:
    from collapselab.metrics import EvalInputs

    cfg = lab.cfg
    external = lab.reference.inputs(cfg.evaluation.reference_sequences) if lab.reference is not None else {}
    return EvalInputs(
        task=lab.task.name, test=lab.human.test, model=model, tokenizer=lab.tokenizer, generation0_model=generation0,
        synthetic=synthetic, human_train=lab.human.train, background_texts=lab.gibberish_background, seq_len=cfg.training.seq_len,
        batch_tokens=cfg.evaluation.batch_tokens, device=device(), seed=seed, **external,
    )


def score(names: list[str], inputs: EvalInputs) -> dict[str, MetricResult]:
    """Compute the named metrics; metrics of synthetic data only where there is some."""
    from collapselab.metrics import evaluate, get_metric

    wanted = [n for n in names if inputs.synthetic is not None or "synthetic" not in get_metric(n).needs]
    return evaluate(wanted, inputs)


def per_example(results: dict[str, MetricResult], ids: list[str], scope: str) -> dict[str, dict[str, float]]:
    """Per-example scores keyed by example id, from the metrics whose examples are `scope`.

    A metric's examples are the synthetic records when it needs `synthetic`, else the test
    examples. Scores are matched to ids by position within their own scope only, and a
    length that differs from that scope's is a bug, never a reason to attach them elsewhere.
    """
    from collapselab.metrics import get_metric

    out: dict[str, dict[str, float]] = {i: {} for i in ids}
    for name, r in results.items():
        if r.per_example is None:
            continue
        own = "synthetic" if "synthetic" in get_metric(name).needs else "test"
        if own != scope:
            continue
        if len(r.per_example) != len(ids):
            raise RuntimeError(f"metric {name!r}: {len(r.per_example)} per-example scores for {len(ids)} {scope} examples")
        for i, v in zip(ids, r.per_example, strict=True):
            if v is not None:  # e.g. has_ans_f1 of an unanswerable question
                out[i][name] = v
    return out


def synthetic_score_rows(results: dict[str, MetricResult], synthetic: list[Record] | None) -> list[dict[str, Any]]:
    """One row per synthetic record with its per-record scores (e.g. perplexity under model_0)."""
    if not synthetic:
        return []
    ids = [r.id for r in synthetic]
    scores = per_example(results, ids, "synthetic")
    return [{"record_id": i, "scores": json.dumps(scores[i])} for i in ids]

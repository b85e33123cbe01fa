"""A learner checkpoint's evaluation on held-out human text, written as a generation folder.

Every checkpoint k is scored on the same held-out tokens (perplexity, cross-entropy) and
continues the same fixed prompts with the same seed (distinct-n, entropy of what it
writes), so the curve over k shows the model's drift and nothing else. The folder
`<run>/learner/seed-<s>/gen-<k>/` has the engine's layout (train / synthetic / predictions
Parquet, metrics.json, DONE), so the store records it through its ordinary path and the
report and dashboard read a learner run as a run with one arm whose generations are steps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.learner.config import LearnerConfig, LearnerError
from collapselab.learner.sources import Document, open_source
from collapselab.records import Record, write_records
from collapselab.seeds import step_seed

ARM = "learner"


@dataclass(slots=True)
class HeldOut:
    """The held-out text (one record of exactly the scored tokens) and the fixed prompts."""

    test: list[Record]
    prompts: list[list[int]]
    prompt_ids: list[str]


def held_out(cfg: LearnerConfig, tokenizer: Any) -> HeldOut:
    """The first `evaluation.tokens` tokens of the held-out source, in its file order, and
    `continuations` prompts spread evenly over them."""
    e = cfg.evaluation
    source = open_source(e.held_out, cfg.learner.seed)
    docs = source.in_file_order() if hasattr(source, "in_file_order") else source.documents(0)
    stream: list[int] = []
    for d in docs:
        stream.extend(tokenizer(d.text + "\n", add_special_tokens=False)["input_ids"])
        if len(stream) >= e.tokens:
            break
    if len(stream) < max(e.tokens, e.seq_len):
        raise LearnerError(f"evaluation.tokens: the held-out text holds {len(stream)} tokens, fewer than the {e.tokens} asked for")
    stream = stream[: e.tokens]
    stride = max(1, (len(stream) - e.prompt_tokens) // e.continuations)
    prompts = [stream[i * stride : i * stride + e.prompt_tokens] for i in range(e.continuations)]
    return HeldOut([Record(id="held-out", text=tokenizer.decode(stream))], prompts, [f"held-out-prompt-{i}" for i in range(len(prompts))])


def gen_folder(run_dir: Path, seed: int, step: int) -> Path:
    from collapselab.rundir.generation import GenerationFolder

    return GenerationFolder(run_dir, ARM, seed, step).path


def evaluate_step(
    cfg: LearnerConfig, run_dir: Path, step: int, model: Any, tokenizer: Any, held: HeldOut,
    trained: list[Record], train_log: dict[str, Any], timings: dict[str, float], db_url: str | None,
) -> dict[str, Any]:
    """Score checkpoint `step`, write its generation folder (DONE last) and record it."""
    from collapselab import store
    from collapselab.generation import generate
    from collapselab.metrics import EvalInputs
    from collapselab.metrics import evaluate as run_metrics
    from collapselab.models.loading import device
    from collapselab.rundir.generation import GenerationFolder

    e, seed = cfg.evaluation, cfg.learner.seed
    folder = gen_folder(run_dir, seed, step)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # The same prompts and the same seed at every step: only the model changes.
    outs = generate(model, tokenizer, held.prompts, cfg.decoding, max_new_tokens=e.continuation_tokens, seed=step_seed(seed, 0, "evaluate"), progress=False)
    tag = json.dumps({"model": cfg.model.name, "learner": cfg.learner.name, "step": step, "decoding": cfg.decoding.model_dump(mode="json")}, sort_keys=True)
    continuations = [
        Record(id=f"{pid}@step{step}", source="synthetic", generation=step, parent_id=pid, generator=tag,
               text=tokenizer.decode(ids, skip_special_tokens=True).removesuffix("\ufffd"))
        for pid, ids in zip(held.prompt_ids, outs, strict=True)
    ]
    generate_s = time.perf_counter() - t0
    inputs = EvalInputs(task="lm", test=held.test, model=model, tokenizer=tokenizer, synthetic=continuations,
                        seq_len=e.seq_len, batch_tokens=e.batch_tokens, device=device(), seed=seed)
    results = run_metrics(e.metrics, inputs)
    metrics = {n: {"value": r.value, "version": r.version, "higher_is_better": r.higher_is_better, "details": r.details} for n, r in results.items()}
    evaluate_s = time.perf_counter() - t0 - generate_s
    _write_predictions(folder / "predictions.parquet", inputs, results)
    write_records(folder / "train.parquet", trained)
    write_records(folder / "synthetic.parquet", continuations)
    from collapselab.models.loading import model_dtype
    from collapselab.rundir.metrics_file import GenerationMetrics, Runtime, write_metrics_file

    write_metrics_file(folder / "metrics.json", GenerationMetrics(
        arm=ARM, seed=seed, generation=step, metrics=metrics,
        train={k: train_log.get(k) for k in ("losses", "steps", "tokens", "seconds")},
        timings={**timings, "generate_s": generate_s, "evaluate_s": evaluate_s},
        sizes={"train_records": len(trained), "synthetic_records": len(continuations),
               "train_synthetic_share": sum(r.source != "human" for r in trained) / max(1, len(trained))},
        runtime=Runtime(device=device(), train_dtype=model_dtype(for_training=True), infer_dtype=model_dtype(for_training=True), generation_backend="transformers"),
    ))
    GenerationFolder(run_dir, ARM, seed, step).mark_done()
    store.record_generation(db_url, run_dir, ARM, seed, step)
    return {n: r.value for n, r in results.items()}


def _write_predictions(path: Path, inputs: Any, results: dict[str, Any]) -> None:
    import pyarrow as pa

    from collapselab.records import atomic_write_parquet

    blocks = inputs.extra.get(("test_blocks", inputs.seq_len), [])
    per = {k: r.per_example for k, r in results.items() if r.per_example is not None and len(r.per_example) == len(blocks)}
    rows = [
        {"example_id": f"test-block-{i:05d}", "input": inputs.tokenizer.decode(b), "reference": "", "prediction": "",
         "scores": json.dumps({k: v[i] for k, v in per.items()})}
        for i, b in enumerate(blocks)
    ]
    schema = pa.schema([(c, pa.string()) for c in ("example_id", "input", "reference", "prediction", "scores")])
    atomic_write_parquet(path, pa.Table.from_pylist(rows, schema=schema))


def document_records(docs: list[Document], self_fed: list[Record]) -> list[Record]:
    """What a step trained on, with provenance: the human documents, then the self-fed ones."""
    return [Record(id=d.id, source="human", title=d.title, text=d.text) for d in docs] + self_fed

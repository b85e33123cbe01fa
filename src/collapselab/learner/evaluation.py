"""A learner checkpoint's evaluation on held-out human text, written as a generation folder.

Every checkpoint k is scored on the same held-out tokens (perplexity, cross-entropy) and
continues the same fixed prompts with the same seed (distinct-n, entropy of what it
writes), so the curve over k shows the model's drift and nothing else. The folder
`<run>/learner/seed-<s>/gen-<k>/` is a generation folder written by the engine's own writer
(`rundir.generation.write_evaluation`) with the lm task's scoring (`tasks.lm.score_texts`),
so the store records it through its ordinary path and the report and dashboard read a
learner run as a run with one arm whose generations are steps.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.learner.config import LearnerConfig, LearnerError
from collapselab.learner.sources import Document, open_source
from collapselab.models.loading import device
from collapselab.records import Record, write_records
from collapselab.rundir.folders import runtime
from collapselab.rundir.generation import GenerationFolder, write_evaluation
from collapselab.seeds import step_seed
from collapselab.tasks.lm import score_texts

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


def step_folder(run_dir: Path, seed: int, step: int) -> GenerationFolder:
    """Checkpoint `step`'s evaluation: generation `step` of the run's one arm."""
    return GenerationFolder(run_dir, ARM, seed, step)


def evaluate_step(
    cfg: LearnerConfig, run_dir: Path, step: int, model: Any, tokenizer: Any, held: HeldOut,
    trained: list[Record], train_log: dict[str, Any], timings: dict[str, float], db_url: str | None,
) -> dict[str, Any]:
    """Score checkpoint `step`, write its generation folder (DONE last) and record it."""
    from collapselab import store
    from collapselab.generation import continuation_text, generate
    from collapselab.metrics import EvalInputs

    e, seed = cfg.evaluation, cfg.learner.seed
    folder = step_folder(run_dir, seed, step)
    folder.path.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # The same prompts and the same seed at every step: only the model changes.
    outs = generate(model, tokenizer, held.prompts, cfg.decoding, max_new_tokens=e.continuation_tokens, seed=step_seed(seed, 0, "evaluate"), progress=False)
    tag = json.dumps({"model": cfg.model.name, "learner": cfg.learner.name, "step": step, "decoding": cfg.decoding.model_dump(mode="json")}, sort_keys=True)
    continuations = [
        Record(id=f"{pid}@step{step}", source="synthetic", generation=step, parent_id=pid, generator=tag, text=continuation_text(tokenizer, ids))
        for pid, ids in zip(held.prompt_ids, outs, strict=True)
    ]
    generate_s = time.perf_counter() - t0
    # The engine's scoring of an lm generation, with what a checkpoint has: no generation-0
    # model, human training pool or gibberish background (the learner's metrics need none).
    inputs = EvalInputs(task="lm", test=held.test, model=model, tokenizer=tokenizer, synthetic=continuations,
                        seq_len=e.seq_len, batch_tokens=e.batch_tokens, device=device(), seed=seed)
    result = score_texts(e.metrics, inputs)
    evaluate_s = time.perf_counter() - t0 - generate_s
    write_records(folder.train, trained)
    write_records(folder.synthetic, continuations)
    write_evaluation(
        folder, metrics=result.metrics, predictions=result.predictions, synthetic_scores=result.synthetic_scores,
        train=trained, synthetic=continuations, train_log=train_log,
        timings={**timings, "generate_s": generate_s, "evaluate_s": evaluate_s},
        # Unlike the engine, which reloads model_g for inference, the learner generates with and
        # scores the model it trains, in its training dtype.
        runtime=runtime(cfg.decoding, infers_in_training_dtype=True),
    )
    store.record_generation(db_url, run_dir, ARM, seed, step)
    return {n: m["value"] for n, m in result.metrics.items()}


def document_records(docs: list[Document], self_fed: list[Record]) -> list[Record]:
    """What a step trained on, with provenance: the human documents, then the self-fed ones."""
    return [Record(id=d.id, source="human", title=d.title, text=d.text) for d in docs] + self_fed

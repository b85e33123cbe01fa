"""The continuous learner. Read it top to bottom.

    stream of documents ──N at a time──▶ fine-tune step k ──▶ checkpoints/step-<k>/, latest
                         ▲ (share r: the model's own continuations)      └──▶ evaluate on held-out human text

Every document is appended to `stream.jsonl` (the spool) before it is trained on, and each
checkpoint's `state.json` holds the spool cursor after its step. A restart resumes from the
checkpoint `latest` names: the documents after its cursor are the next ones, so after a
kill -9 no document is trained on twice in the published line of models and none is
skipped. SIGTERM (`stop`) ends the loop after the step in progress.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from collapselab.config import config_from_dict, dump_config
from collapselab.learner.checkpoints import checkpoint_dir, latest, publish, read_state
from collapselab.learner.config import LearnerConfig, LearnerError
from collapselab.learner.evaluation import (
    ARM,
    document_records,
    evaluate_step,
    held_out,
    step_folder,
)
from collapselab.learner.sources import Document, DocumentSource, open_source
from collapselab.models.loading import apply_lora, load_model, merge_lora
from collapselab.records import Record, atomic_write_json, atomic_write_text, record_from_dict
from collapselab.rundir.folders import create_run_folder, lock_run, manifest
from collapselab.seeds import step_seed
from collapselab.textio import disk_space_for


def run_learner(
    cfg: LearnerConfig, *, fresh: bool = False, db_url: str | None = None,
    stop: threading.Event | None = None, report: Callable[[str], None] = print,
) -> Path:
    """Run (or continue) the learner until `learner.steps` steps are published, the source
    runs dry, or `stop` is set; returns the run directory."""
    run_dir = open_learner_run(cfg, fresh=fresh)
    # One learner per run (a second stops here, RunLocked, exit 2); taking the lock also
    # removes what a killed learner left half-written (a checkpoint folder being published).
    lock = lock_run(run_dir)
    try:
        return _learn(cfg, run_dir, db_url, stop or threading.Event(), report)
    finally:
        lock.release()


def _learn(cfg: LearnerConfig, run_dir: Path, db_url: str | None, stop: threading.Event, report: Callable[[str], None]) -> Path:
    from collapselab import store

    store.import_run_dir(db_url, run_dir)  # the run row, and steps finished before a crash
    source = open_source(cfg.source, cfg.learner.seed)
    spool = Spool(run_dir / "stream.jsonl", source)
    if latest(run_dir) is None:
        publish_base(cfg, run_dir)
    current = latest(run_dir)
    state = read_state(current)
    step, cursor = state["step"], state["cursor"]
    loaded = load_model(current, for_training=True)
    model, tokenizer = loaded.model, loaded.tokenizer
    held = held_out(cfg, tokenizer)
    if not step_folder(run_dir, cfg.learner.seed, step).is_done():
        # killed between publishing the checkpoint and finishing its evaluation
        trained = _trained_records(spool, state)
        evaluate_step(cfg, run_dir, step, model, tokenizer, held, trained, state.get("train", {}), state.get("timings", {}), db_url)
    report(f"learner {run_dir}: at step {step}, {cursor} documents read")

    n = cfg.learner.docs_per_step
    n_self = round(cfg.learner.self_feed * n)
    while step < cfg.learner.steps and not stop.is_set():
        step += 1
        human = spool.take(cursor, n - n_self)
        if not human:
            report(f"learner: the source has no document after {cursor}; stopping")
            break
        t0 = time.perf_counter()
        self_fed = self_feed(cfg, model, tokenizer, human, n_self, step) if n_self else []
        model, log = train_step(cfg, model, tokenizer, [d.text for d in human] + [r.text or "" for r in self_fed], step)
        timings = {"self_feed_s": log.pop("self_feed_s", 0.0), "train_s": time.perf_counter() - t0}
        cursor += len(human)
        state = {"cursor": cursor, "documents": [d.id for d in human], "self_fed": [r.to_dict() for r in self_fed], "train": {**log, "cursor": cursor}, "timings": timings}
        publish(model, tokenizer, run_dir, step, state)
        prune_checkpoints(run_dir, cfg.learner.keep_checkpoints, step)
        values = evaluate_step(cfg, run_dir, step, model, tokenizer, held, document_records(human, self_fed), state["train"], timings, db_url)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in values.items() if v is not None)
        report(f"learner step {step}: {len(human)} documents (+{len(self_fed)} self-fed), loss {log['losses'][-1]:.3f}; {shown}")
        if len(human) < n - n_self:
            report("learner: the source ran dry; stopping")
            break
    return run_dir


# ---------------------------------------------------------------- the run directory


def as_experiment(cfg: LearnerConfig, steps: int):
    """The learner as the engine's ExperimentConfig (one arm, steps as generations), written
    as the run's config.yaml so the store, the report and the dashboard read it as a run."""

    return config_from_dict({
        "experiment": {"name": cfg.learner.name, "task": "lm", "generations": steps + 1, "seeds": [cfg.learner.seed], "output_dir": cfg.learner.output_dir},
        "data": {"dataset": cfg.source.kind, "path": cfg.source.path, "split_seed": cfg.learner.seed},
        "model": cfg.model.model_dump(mode="json"),
        "training": cfg.training.model_dump(mode="json"),
        "decoding": {**cfg.decoding.model_dump(mode="json"), "max_new_tokens": cfg.evaluation.continuation_tokens},
        "evaluation": {"metrics": cfg.evaluation.metrics, "batch_tokens": cfg.evaluation.batch_tokens},
        "arms": [{"name": ARM, "init": "previous", "mix": "replace"}],
    }, source="learner")


def identity(cfg: LearnerConfig) -> str:
    """What makes a run the same learner: the config without the step count (runs grow)."""

    data = cfg.model_dump(mode="json")
    data["learner"].pop("steps")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def open_learner_run(cfg: LearnerConfig, *, fresh: bool) -> Path:
    """The newest run of this learner (same identity), else a new one."""

    root = Path(cfg.learner.output_dir) / cfg.learner.name
    exp = as_experiment(cfg, cfg.learner.steps)
    runs = sorted((p for p in root.glob("*") if (p / "manifest.json").is_file()), key=lambda p: json.loads((p / "manifest.json").read_text())["created"]) if root.is_dir() else []
    if runs and not fresh:
        run_dir = runs[-1]
        found = json.loads((run_dir / "manifest.json").read_text()).get("learner_identity")
        if found != identity(cfg):
            raise LearnerError(f"{run_dir}: an existing learner run with another config (identity {found}, this config {identity(cfg)}); use --fresh for a new run (it is left untouched)")
    else:
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        while (root / run_id).exists():
            run_id += "x"
        run_dir = root / run_id
        # the run appears with its manifest in it: a kill here leaves no run folder that is none
        create_run_folder(run_dir, lambda tmp: atomic_write_json(tmp / "manifest.json", {**manifest(exp, run_id), "learner_identity": identity(cfg)}))

    # rewritten on every start: `learner.steps` may have grown
    atomic_write_text(run_dir / "config.yaml", dump_config(exp))
    atomic_write_text(run_dir / "learner.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
    return run_dir


def publish_base(cfg: LearnerConfig, run_dir: Path) -> None:
    """Step 0: the starting model itself, published so it is served and evaluated too."""

    loaded = load_model(cfg.model.name, for_training=True)
    publish(loaded.model, loaded.tokenizer, run_dir, 0, {"cursor": 0, "documents": [], "self_fed": [], "train": {"losses": [], "steps": 0, "tokens": 0, "seconds": 0.0}})


def prune_checkpoints(run_dir: Path, keep: int | None, newest: int) -> None:
    """Remove all but the newest `keep` checkpoints (step 0, the base, stays)."""
    if keep is None:
        return
    for step in range(1, newest - keep + 1):
        shutil.rmtree(checkpoint_dir(run_dir, step), ignore_errors=True)


# ---------------------------------------------------------------- one step


def self_feed(cfg: LearnerConfig, model: Any, tokenizer: Any, human: list[Document], n: int, step: int) -> list[Record]:
    """`n` continuations by the current model of the step's human documents' openings."""
    from collapselab.generation import continuation_text, generate

    p = cfg.learner.self_feed_prompt_tokens
    parents = [human[i % len(human)] for i in range(n)]
    prompts = [tokenizer(d.text, add_special_tokens=False)["input_ids"][:p] or [tokenizer.eos_token_id] for d in parents]
    outs = generate(model, tokenizer, prompts, cfg.decoding, max_new_tokens=cfg.learner.self_feed_tokens, seed=step_seed(cfg.learner.seed, step, "self_feed"), progress=False)
    tag = json.dumps({"model": cfg.model.name, "learner": cfg.learner.name, "step": step - 1, "decoding": cfg.decoding.model_dump(mode="json")}, sort_keys=True)
    return [
        Record(id=f"self-feed:{step}:{i}", source="synthetic", generation=step - 1, parent_id=d.id, generator=tag,
               text=continuation_text(tokenizer, ids))
        for i, (d, ids) in enumerate(zip(parents, outs, strict=True))
    ]


def train_step(cfg: LearnerConfig, model: Any, tokenizer: Any, texts: list[str], step: int) -> tuple[Any, dict[str, Any]]:
    """One fine-tune step on `texts` with the engine's training code; returns the (merged) model."""
    from collapselab.training.loop import train_lm

    docs = [ids[: cfg.learner.max_doc_tokens] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] if ids]
    # LoRA: fresh adapters each step, merged after it, as the engine's init 'previous' does.
    trainable = apply_lora(model, cfg.model.lora, seed=step_seed(cfg.learner.seed, step, "lora")) if cfg.model.lora else model
    result = train_lm(trainable, docs, cfg.training, eos_id=tokenizer.eos_token_id, seed=step_seed(cfg.learner.seed, step, "train"), desc=f"learner step {step}", progress=False)
    return merge_lora(trainable), {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds}


def _trained_records(spool: Spool, state: dict[str, Any]) -> list[Record]:
    by_id = {d.id: d for d in spool.docs}
    human = [by_id[i] for i in state["documents"]]

    return document_records(human, [record_from_dict(r) for r in state.get("self_fed", [])])


# ---------------------------------------------------------------- the spool


class Spool:
    """Every document read from the source, in order, appended (and fsynced) before use.

    Position i of the spool is the i-th document of the learner's stream for good, whatever
    the source: a random API, a folder, a file. A line torn by a kill is dropped on reopen;
    a document id seen before (a random source repeats itself) is not spooled again.
    """

    def __init__(self, path: Path, source: DocumentSource):
        self.path, self.source = path, source
        self.docs: list[Document] = []
        self._next_pos = 0  # the source position after the last spooled document
        if path.is_file():
            good = 0
            raw = path.read_bytes()
            for line in raw.splitlines(keepends=True):
                if not line.endswith(b"\n"):
                    break
                row = json.loads(line)
                self.docs.append(Document(row["id"], row["title"], row["text"]))
                self._next_pos = row["pos"] + 1
                good += len(line)
            if good < len(raw):
                with path.open("r+b") as f:
                    f.truncate(good)
        self._ids = {d.id for d in self.docs}
        self._stream: Iterator[tuple[int, Document]] | None = None

    def take(self, start: int, n: int) -> list[Document]:
        """Documents [start, start + n) of the stream, reading more from the source as needed."""
        while len(self.docs) < start + n:
            doc = self._read()
            if doc is None:
                break
        return self.docs[start : start + n]

    def _read(self) -> Document | None:
        if self._stream is None:
            self._stream = enumerate(self.source.documents(self._next_pos), self._next_pos)
        for pos, doc in self._stream:
            self._next_pos = pos + 1
            if doc.id in self._ids or not doc.text.strip():
                continue
            line = json.dumps({"id": doc.id, "title": doc.title, "text": doc.text, "pos": pos}, ensure_ascii=False) + "\n"
            # an append, not a rename: a line cut short by a kill or a full disk is dropped on reopen
            with disk_space_for(self.path, len(line.encode())), self.path.open("a", encoding="utf-8") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            self.docs.append(doc)
            self._ids.add(doc.id)
            return doc
        return None

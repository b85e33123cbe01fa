"""A learner checkpoint's evaluation is written as the engine writes a generation: the same
metric entries, prediction rows, per-record scores and runtime record for the same model and
data, and continuations decoded the same way."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow.parquet as pq
from tiny import chat_tokenizer, save_chat_model

from collapselab import store
from collapselab.learner.config import learner_config_from_dict
from collapselab.learner.evaluation import ARM, evaluate_step, held_out, step_folder
from collapselab.learner.loop import as_experiment, open_learner_run
from collapselab.records import Record, read_records
from collapselab.rundir.folders import runtime
from collapselab.rundir.generation import GenerationFolder, write_evaluation

WORDS = "the cat sat on the mat and the dog sat on the log a model trained on its own output forgets".split()
# perplexity and cross_entropy score every test block; duplicate_rate and empty_rate every
# continuation (as many continuations as test blocks: a score must still find its own kind of row)
METRICS = ["perplexity", "cross_entropy", "distinct_1", "entropy", "duplicate_rate", "empty_rate"]


def _jsonl(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    path.write_text("".join(json.dumps({"id": f"h{i}", "text": " ".join(rng.choice(WORDS) for _ in range(40))}) + "\n" for i in range(n)))
    return path


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_the_learner_writes_a_checkpoint_as_the_engine_writes_a_generation(tmp_path):
    from collapselab.lab import HumanData, Lab
    from collapselab.models.loading import load_model
    from collapselab.tasks import get_task

    base = save_chat_model(tmp_path / "base", chat=True, seed=3)
    cfg = learner_config_from_dict({
        "learner": {"name": "tiny", "output_dir": str(tmp_path / "runs"), "steps": 1},
        "source": {"kind": "jsonl", "path": str(_jsonl(tmp_path / "docs.jsonl", 4, 0))},
        "model": {"name": str(base)},
        "training": {"seq_len": 32, "batch_tokens": 256},
        "evaluation": {"held_out": {"kind": "jsonl", "path": str(_jsonl(tmp_path / "held.jsonl", 4, 1))}, "tokens": 128, "seq_len": 32,
                       "continuations": 4, "prompt_tokens": 6, "continuation_tokens": 6, "metrics": METRICS, "batch_tokens": 256},
    })
    loaded = load_model(base, for_training=True)  # the learner scores the model it trains
    model, tok = loaded.model, loaded.tokenizer
    held = held_out(cfg, tok)
    trained = [Record(id="d0", source="human", text="the cat sat on the mat"), Record(id="s0", source="synthetic", text="the dog")]
    train_log = {"losses": [2.5, 2.0], "steps": 2, "tokens": 64, "seconds": 0.5, "cursor": 3}

    # the learner's path: a checkpoint scored and written by evaluate_step
    run_dir = open_learner_run(cfg, fresh=True)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    store.import_run_dir(db, run_dir)
    values = evaluate_step(cfg, run_dir, 1, model, tok, held, trained, train_log, {"train_s": 1.0}, db)
    learner = step_folder(run_dir, cfg.learner.seed, 1)
    continuations = read_records(learner.synthetic)

    # the engine's path for the same model and data: the lm task's evaluation, then the writer
    exp = as_experiment(cfg, 1)
    task = get_task("lm")
    lab = Lab(exp, task, tmp_path / "engine", HumanData([], held.test), tok, max_positions=256, max_new_tokens=task.max_new_tokens(exp),
              prompt_format=None, reference=None, gibberish_background=[], mmlu=None)
    evaluation = lab.task.evaluate(lab, model, model, continuations, cfg.learner.seed)
    engine = GenerationFolder(tmp_path / "engine", ARM, cfg.learner.seed, 1)
    write_evaluation(engine, metrics=evaluation.metrics, predictions=evaluation.predictions, synthetic_scores=evaluation.synthetic_scores,
                     train=trained, synthetic=continuations, train_log=train_log, timings={"train_s": 1.0}, runtime=runtime(exp.decoding))

    ours, theirs = learner.read_metrics(), engine.read_metrics()
    assert sorted(ours.metrics) == sorted(METRICS)
    assert ours.metrics == theirs.metrics  # value, version, direction and details of every entry
    assert values == {n: e.value for n, e in theirs.metrics.items()}
    assert (ours.train, ours.sizes) == (theirs.train, theirs.sizes)
    assert ours.sizes.train_synthetic_share == 0.5 and ours.train.losses == [2.5, 2.0]
    # the same runtime record but for the dtype it generates in: the model it trains
    assert ours.runtime.model_dump(exclude={"infer_dtype"}) == theirs.runtime.model_dump(exclude={"infer_dtype"})
    assert ours.runtime.infer_dtype == ours.runtime.train_dtype

    predictions = _rows(learner.predictions)
    assert predictions == _rows(engine.predictions) and len(predictions) == 128 // 32
    assert set(json.loads(predictions[0]["scores"])) == {"perplexity", "cross_entropy"}  # the test blocks' own scores only
    scores = _rows(learner.synthetic_scores)
    assert scores == _rows(engine.synthetic_scores)
    assert [r["record_id"] for r in scores] == [r.id for r in continuations]
    assert all(set(json.loads(r["scores"])) == {"duplicate_rate", "empty_rate"} for r in scores)
    assert learner.is_done() and engine.is_done()


def test_a_continuation_keeps_every_token_the_model_wrote_but_a_torn_last_character():
    from collapselab.generation import continuation_text

    tok = chat_tokenizer(chat=True)
    ids = tok("the cat sat", add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("<|user|>")] + tok(" on the mat", add_special_tokens=False)["input_ids"]
    text = continuation_text(tok, ids)
    assert text == "the cat sat<|user|> on the mat"
    assert tok(text, add_special_tokens=False)["input_ids"] == ids  # what a later generation trains on is what was written
    torn = tok("the mat", add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids("Ã")]  # the first byte of "é"
    assert continuation_text(tok, torn) == "the mat"

"""A second model writes the refinery's data (`refinery.generator_model`), and each role
decodes with its own settings (`decoding.contamination`, `.synthesis`, `.generation`).

One tiny three-arm run serves the tests of this module: the trained model is a scratch Llama
with the run's own byte-level BPE; the writer is another tiny random Llama saved as an HF
folder with a different tokenizer (`tiny.save_chat_model`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import save_chat_model, tiny_config

from collapselab.config import DECODING_ROLES, DecodingBlock, config_from_dict
from collapselab.records import read_records

from .qa_fixtures import three_arm_config, write_tiny_qa

ROLES = {"contamination": 0.3, "synthesis": 0.7, "generation": 1.3}  # temperatures, one per role


@pytest.fixture(scope="module")
def second_model_run(tmp_path_factory):
    import collapselab.generation as generation
    import collapselab.refinery.builders as builders
    from collapselab.engine import run_experiment

    home = tmp_path_factory.mktemp("second-model")
    mp = pytest.MonkeyPatch()
    from tiny_runs import isolate

    isolate(mp, home)
    writer = save_chat_model(home / "writer", chat=False, seed=3)
    cfg = three_arm_config(write_tiny_qa(home / "qa", n_train=20, n_test=6), home / "runs", generator_model=str(writer))
    cfg["data"].update(train_size=20, test_size=6)
    cfg["decoding"].update({role: {"temperature": t} for role, t in ROLES.items()})
    cfg["arms"].append({"name": "D-written", "data": "human", "writer": "generator"})  # the loop's data by the writer
    loads, calls = [], []  # (source, for_training) of every writer load; (desc, temperature) of every generate call
    real_load, real_generate = builders.load_model, generation.generate

    def load(source, **kw):
        loads.append((str(source), kw["for_training"]))
        return real_load(source, **kw)

    def generate(model, tokenizer, prompts, decoding, **kw):
        calls.append((kw.get("desc"), decoding.method, decoding.temperature, len(tokenizer)))
        return real_generate(model, tokenizer, prompts, decoding, **kw)

    mp.setattr(builders, "load_model", load)
    mp.setattr(generation, "generate", generate)
    try:
        run_dir = run_experiment(config_from_dict(cfg), db_url=f"sqlite:///{home / 'runs.db'}")
    finally:
        mp.undo()
    return run_dir, writer, loads, calls


def test_the_second_model_writes_every_refinery_record_and_is_named(second_model_run):
    run_dir, writer, loads, _ = second_model_run
    for arm, kind in (("B-contaminated", "contaminated"), ("C-synthetic", "synthetic")):
        records = read_records(run_dir / arm / "seed-0" / "gen-0" / "train.parquet")
        assert records and {r.source for r in records} == {kind}
        tags = [json.loads(r.generator) for r in records]
        assert {t["model"] for t in tags} == {str(writer)}
        assert {t["generator"] for t in tags} == {"second model, fine-tuned on the human seed (QA + question generation)"}
        stats = json.loads((run_dir / arm / "seed-0" / "gen-0" / "refinery.json").read_text())
        assert stats["generator"]["model"] == str(writer) and stats["generator"]["fine_tuned"] is True
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["data_generator"] == {"model": str(writer), "second_model": True, "fine_tuned": True,
                                          "arms": ["B-contaminated", "C-synthetic", "D-written"]}
    # The trained model's own records still name the trained model.
    own = read_records(run_dir / "A-human" / "seed-0" / "gen-0" / "synthetic.parquet")
    assert {json.loads(r.generator)["model"] for r in own} == {"scratch"}
    # Fine-tuned once from the writer, then loaded to write once for both refinery arms (and
    # once more for the loop's data of the arm it writes for).
    generator = run_dir / "refinery-generator" / "seed-0"
    assert loads == [(str(writer), True), (str(generator), False), (str(generator), False)]
    trained = json.loads((run_dir / "A-human" / "seed-0" / "gen-0" / "model" / "config.json").read_text())
    assert json.loads((generator / "config.json").read_text())["vocab_size"] != trained["vocab_size"]


def test_an_arm_whose_writer_is_the_generator_trains_on_its_data_not_its_own(second_model_run):
    run_dir, writer, _, _ = second_model_run
    d, a = (run_dir / arm / "seed-0" / "gen-0" for arm in ("D-written", "A-human"))
    assert not json.loads((d / "metrics.json").read_text()).get("copied_from")  # its generation 0 is not A's
    written = read_records(d / "synthetic.parquet")
    tags = [json.loads(r.generator) for r in written]
    assert {(t["model"], t["arm"], t["writer"]) for t in tags} == {(str(writer), "D-written", "second model, fine-tuned on the human seed (QA + question generation)")}
    assert {t["decoding"]["temperature"] for t in tags} == {1.3}  # the loop's role
    assert [r.parent_id for r in written] == [r.id for r in read_records(a / "train.parquet")]  # one answer per human question
    assert [r.answers for r in written] != [r.answers for r in read_records(a / "synthetic.parquet")]


def test_each_role_decodes_with_its_own_settings_with_the_writer_s_tokenizer(second_model_run):
    run_dir, writer, _, calls = second_model_run
    from transformers import AutoTokenizer

    writer_vocab = len(AutoTokenizer.from_pretrained(writer))
    seen = {(desc, method, temperature, vocab) for desc, method, temperature, vocab in calls}
    assert ("contaminate: answer", "sample", 0.3, writer_vocab) in seen
    assert ("refinery: questions", "sample", 0.7, writer_vocab) in seen
    assert ("refinery: answers", "sample", 0.7, writer_vocab) in seen
    loop = {(method, temperature) for desc, method, temperature, vocab in calls if desc == "generate g0"}
    assert loop == {("sample", 1.3)}  # every arm's generation 0 writes with the loop's role
    evaluation = [method for desc, method, *_ in calls if desc == "evaluate"]
    assert evaluation and set(evaluation) == {"greedy"}
    for arm, temperature in (("B-contaminated", 0.3), ("C-synthetic", 0.7)):
        tags = [json.loads(r.generator) for r in read_records(run_dir / arm / "seed-0" / "gen-0" / "train.parquet")]
        assert {t["decoding"]["temperature"] for t in tags} == {temperature}
        assert all("contamination" not in t["decoding"] for t in tags)  # the settings used, not the role blocks
    own = read_records(run_dir / "A-human" / "seed-0" / "gen-0" / "synthetic.parquet")
    assert {json.loads(r.generator)["decoding"]["temperature"] for r in own} == {1.3}


def test_without_the_new_keys_every_role_decodes_as_the_one_decoding_block_and_the_hash_stands():
    raw = three_arm_config(Path("/data/qa"), Path("/runs"))
    cfg = config_from_dict(raw)
    shared = DecodingBlock.model_validate(raw["decoding"])
    assert all(cfg.decoding.for_role(role) == shared for role in DECODING_ROLES)
    # The hashes these configs had before decoding roles, refinery.generator_*, arms[].writer and
    # arms[].schedule existed (git a626c8c): runs started then still continue.
    assert cfg.config_hash() == "1d1599736722e5ea"
    assert config_from_dict(tiny_config(Path("/data/lm"), Path("/runs"))).config_hash() == "28044a0d8df182e1"
    raw["decoding"]["synthesis"] = {"top_k": 5}  # a key set is part of the hash
    assert config_from_dict(raw).config_hash() != cfg.config_hash()


def test_an_unfine_tuned_second_model_writes_as_it_is(tmp_path, monkeypatch):
    from collapselab.engine import run_experiment

    writer = save_chat_model(tmp_path / "writer", chat=False, seed=4)
    raw = three_arm_config(write_tiny_qa(tmp_path / "qa", n_train=10, n_test=4), tmp_path / "runs",
                           generator_model=str(writer), generator_fine_tune=False)
    raw["data"].update(train_size=10, test_size=4)
    raw["arms"] = [{"name": "B-contaminated", "data": "contaminated"}]
    run_dir = run_experiment(config_from_dict(raw))
    assert not (run_dir / "refinery-generator").exists()
    tags = [json.loads(r.generator) for r in read_records(run_dir / "B-contaminated/seed-0/gen-0/train.parquet")]
    assert {(t["model"], t["generator"]) for t in tags} == {(str(writer), "second model, not fine-tuned")}
    assert json.loads((run_dir / "manifest.json").read_text())["data_generator"]["fine_tuned"] is False

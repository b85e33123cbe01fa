"""The qa task with an encoder-decoder model loaded from a local folder (as a hub T5 would be)."""

from __future__ import annotations

import json

from tiny import t5, tiny_config

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.records import read_records


def _tiny_t5(folder, texts):
    from collapselab.models.loading import train_tokenizer

    tok = train_tokenizer(texts, 300)  # the run's own scratch tokenizer
    model = t5(len(tok), num_heads=2, dropout_rate=0.1, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
               decoder_start_token_id=tok.pad_token_id)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def test_seq2seq_qa_run_trains_on_its_own_answers(tiny_qa_data, tmp_path):
    texts = [json.loads(line)["context"] for line in (tiny_qa_data / "train.jsonl").read_text().splitlines()]
    _tiny_t5(tmp_path / "t5", texts)
    cfg = tiny_config(tiny_qa_data, tmp_path / "runs", generations=2, task="qa")
    cfg["data"] = {"dataset": "jsonl", "path": str(tiny_qa_data), "train_size": 30, "test_size": 10}
    cfg["model"] = {"name": str(tmp_path / "t5"), "kind": "seq2seq"}
    cfg["training"] = {"epochs": 2, "lr": 0.005, "batch_tokens": 1024}
    cfg["decoding"] = {"method": "greedy", "max_new_tokens": 8}
    cfg["evaluation"] = {"metrics": ["exact_match", "f1"]}
    cfg["arms"] = [{"name": "selfplag", "init": "previous", "mix": "replace"}]
    run_dir = run_experiment(config_from_dict(cfg))
    gen1 = read_records(run_dir / "selfplag/seed-0/gen-1/train.parquet")
    syn0 = read_records(run_dir / "selfplag/seed-0/gen-0/synthetic.parquet")
    assert [r.answers for r in gen1] == [r.answers for r in syn0] and all(len(r.answers) == 1 for r in gen1)
    assert all(r.source == "synthetic" and r.parent_id for r in gen1)
    m = json.loads((run_dir / "selfplag/seed-0/gen-1/metrics.json").read_text())["metrics"]
    assert 0 <= m["exact_match"]["value"] <= m["f1"]["value"] <= 100
    from collapselab.models.loading import load_model

    assert load_model(run_dir / "selfplag/seed-0/gen-1/model", seq2seq=True, for_training=False).model.config.is_encoder_decoder

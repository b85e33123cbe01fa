"""The refinery on real SQuAD v2 at tiny scale: the three arms run end to end with every
filter (the real local MiniLM encoder included), and the report is complete."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from collapselab.config import load_config
from collapselab.engine import run_experiment
from collapselab.records import read_records
from collapselab.report import write_report

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "refinery-squad.yaml"
TINY = [
    "experiment.seeds=[0]", "data.train_size=40", "data.test_size=16",
    "model.scratch.d_model=48", "model.scratch.vocab_size=512", "model.pretrain.epochs=2", "refinery.generator_epochs=1",
    "decoding.max_new_tokens=12", "evaluation.metrics=[exact_match,f1,has_ans_f1,no_ans_accuracy,rouge1,rouge2,rougeL,bertscore]",
]


def test_refinery_squad_tiny_end_to_end(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    cfg = load_config(CONFIG, [*TINY, f"experiment.output_dir={tmp_path / 'runs'}"])
    run_dir = run_experiment(cfg, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    stats = json.loads((run_dir / "C-synthetic/seed-0/gen-0/refinery.json").read_text())
    # every configured filter ran, in order, each on what the previous ones left
    assert stats["filter_order"] == cfg.refinery.filters.order and set(stats["filters"]) == set(stats["filter_order"])
    checked = [stats["filters"][f]["checked"] for f in stats["filter_order"]]
    assert checked == sorted(checked, reverse=True) and checked[0] == stats["attempts"] > 0
    assert stats["passed"] == len(read_records(run_dir / "C-synthetic/seed-0/gen-0/train.parquet")) + stats["surplus"]
    b = read_records(run_dir / "B-contaminated/seed-0/gen-0/train.parquet")
    assert len(b) == 40 and sum(json.loads(r.generator)["strategy"] == "answer_paraphrase" for r in b) == 8
    paths = write_report(run_dir, tmp_path / "report")
    md = paths.markdown.read_text()
    assert "BERTScore" in md and "not computed" not in md.split("## Main results")[1].split("##")[0]
    assert not re.search(r"TO BE FILLED|\b[Nn]a[Nn]\b|\bNone\b", md)

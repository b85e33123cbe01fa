"""A metric whose library is not installed stops a run before training, with the pip install
that fixes it (a plain `pip install collapselab` lacks the `metrics` extra)."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.metrics import default_metrics
from collapselab.metrics import registry as metrics_registry
from collapselab.tasks import get_task


def test_the_lm_defaults_need_no_optional_library(monkeypatch):
    # The quickstart's metrics run on core dependencies only (sacrebleu is one of them).
    monkeypatch.setattr(metrics_registry, "_installed", lambda module: False)
    assert metrics_registry.missing_libraries(default_metrics(get_task("lm"))) == []
    assert ("rouge1", "rouge_score") in metrics_registry.missing_libraries(default_metrics(get_task("qa")))


def test_a_missing_library_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(metrics_registry, "_installed", lambda module: module != "rouge_score")
    for split in ("train", "test"):
        rows = [{"id": f"{split}{i}", "title": f"{split}{i // 2}", "context": f"Anna lives in city {i}.",
                 "question": "Where does Anna live?", "answers": [f"city {i}"]} for i in range(8)]
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {  # no evaluation block: the qa defaults, which include ROUGE
        "experiment": {"name": "qa", "task": "qa", "generations": 1, "output_dir": str(tmp_path / "runs")},
        "data": {"dataset": "jsonl", "path": str(tmp_path), "train_size": 8, "test_size": 4},
        "model": {"name": "scratch", "scratch": {"architecture": "llama", "vocab_size": 300, "d_model": 16, "n_layers": 1,
                                                 "n_heads": 2, "max_positions": 128},
                  "pretrain": {"epochs": 1, "batch_tokens": 256, "seq_len": 32}},
        "training": {"epochs": 1, "batch_tokens": 256, "seq_len": 32},
        "arms": [{"name": "human"}],
    }
    (tmp_path / "qa.yaml").write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["run", str(tmp_path / "qa.yaml"), "--db", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr == (f"error: {tmp_path / 'qa.yaml'}: evaluation.metrics (the qa defaults): metrics 'rouge1', "
                             "'rouge2', 'rougeL' need the rouge_score library, which is not installed: "
                             "pip install 'collapselab[metrics]'\n")
    assert not (tmp_path / "runs").exists()  # nothing was trained or written

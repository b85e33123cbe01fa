"""Model resolution, LoRA and saving, with tiny random models saved to tmp folders."""

from __future__ import annotations

import json

import pytest
from tiny import tiny_config, tiny_corpus

from collapselab.config import ScratchArchitecture, config_from_dict
from collapselab.engine import run_experiment
from collapselab.models.loading import (
    build_scratch_model,
    load_model,
    resolve_model_path,
    save_model,
    train_tokenizer,
)


@pytest.fixture
def tiny_pretrained(tmp_path):
    """A 'pretrained' model folder, as a hub download or $COLLAPSELAB_MODELS entry would be."""
    texts = [d["text"] for d in tiny_corpus(60, 3, "pre")]
    tok = train_tokenizer(texts, 300)
    model = build_scratch_model(ScratchArchitecture(vocab_size=300, d_model=32, n_layers=1, n_heads=2, max_positions=64), tok, seed=0)
    folder = tmp_path / "models" / "tiny-llama"
    save_model(model, tok, folder)
    return folder


def test_resolution_order(tiny_pretrained, tmp_path, monkeypatch):
    assert resolve_model_path(str(tiny_pretrained)) == str(tiny_pretrained)
    monkeypatch.setenv("COLLAPSELAB_MODELS", str(tiny_pretrained.parent))
    assert resolve_model_path("tiny-llama") == str(tiny_pretrained)
    assert resolve_model_path("org/not-here") == "org/not-here"  # left to the hub


def test_lora_run_from_a_models_folder_saves_merged_full_models(tiny_pretrained, tiny_lm_data, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_MODELS", str(tiny_pretrained.parent))
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=2)
    cfg["model"] = {"name": "tiny-llama", "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}}
    cfg["arms"] = [{"name": "base", "init": "base", "mix": "replace"}]
    run_dir = run_experiment(config_from_dict(cfg))
    before = load_model(tiny_pretrained, for_training=False).model.state_dict()
    for g in range(2):
        folder = run_dir / "base/seed-0" / f"gen-{g}" / "model"
        assert not (folder / "adapter_config.json").exists()  # adapters merged: a full HF folder
        after = load_model(folder, for_training=False).model.state_dict()
        assert set(after) == set(before)
        changed = [k for k in before if not (before[k] == after[k]).all()]
        # LoRA on q/v only: exactly the attention q and v projections moved
        assert changed and all(("q_proj" in k or "v_proj" in k) for k in changed)
        log = json.loads((folder / "train_log.json").read_text())
        assert log["steps"] >= 1 and log["init"] == "base"


def test_unknown_model_is_a_clear_error(tiny_lm_data, tmp_path):
    from collapselab.models.loading import ModelError

    cfg = tiny_config(tiny_lm_data, tmp_path / "runs")
    cfg["model"] = {"name": str(tmp_path / "no-such-model")}
    cfg["arms"] = [{"name": "a", "init": "base", "mix": "replace"}]
    with pytest.raises(ModelError, match="no-such-model"):
        run_experiment(config_from_dict(cfg))
    assert not (tmp_path / "runs").exists()  # failed before a run directory was made

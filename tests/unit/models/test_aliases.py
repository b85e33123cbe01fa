"""The knowledge-collapse framework's short model names: aliases of the hub ids they stand
for, found wherever a hub id is (here: $COLLAPSELAB_MODELS; the hub is offline)."""

from __future__ import annotations

import pytest
from tiny import save_chat_model

from collapselab.checks import check_experiment, config_problems
from collapselab.config import config_from_dict
from collapselab.errors import ConfigErrors
from collapselab.models.catalogue import HUB_ALIASES, hub_id
from collapselab.models.loading import found_without_hub, load_tokenizer, resolve_model_path


def test_short_names_stand_for_the_frameworks_hub_ids():
    assert hub_id("gemma31b") == "google/gemma-3-1b-it" and hub_id("smollm17") == "HuggingFaceTB/SmolLM-1.7B"
    assert hub_id("phi15") == "microsoft/phi-1_5" and hub_id("my/model") == "my/model"
    assert all("/" in v for v in HUB_ALIASES.values())


def test_a_short_name_resolves_to_its_hub_id_or_a_local_copy_of_it(tmp_path, monkeypatch):
    monkeypatch.delenv("COLLAPSELAB_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_model_path("smollm17") == "HuggingFaceTB/SmolLM-1.7B"
    models = tmp_path / "models"
    monkeypatch.setenv("COLLAPSELAB_MODELS", str(models))
    save_chat_model(models / "google/gemma-3-1b-it")  # a copy under its hub id
    (models / "phi15").mkdir()  # a copy under its short name (the folder is what resolving looks for)
    assert resolve_model_path("gemma31b") == str(models / "google/gemma-3-1b-it")
    assert resolve_model_path("phi15") == str(models / "phi15")
    assert found_without_hub("gemma31b") and not found_without_hub("smollm17")
    assert load_tokenizer("gemma31b").pad_token is not None  # it loads as the hub id would


def test_offline_a_short_name_found_nowhere_is_refused_naming_its_hub_id(tmp_path, monkeypatch):
    monkeypatch.delenv("COLLAPSELAB_MODELS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = config_from_dict({"experiment": {"name": "x", "task": "qa"}, "data": {"dataset": "squad_v2"},
                            "model": {"name": "smollm17"}, "arms": [{"name": "a"}]})
    assert not [p for p in config_problems(cfg) if p.startswith("model.name")]  # the schema and registries accept it
    with pytest.raises(ConfigErrors, match=r"model.name: 'smollm17' \(hub id HuggingFaceTB/SmolLM-1.7B\) is not a catalogue name"):
        check_experiment(cfg, here=True)

"""`hub.repo_id` defaults to $HUGGINGFACE_REPO_ID (the knowledge-collapse framework's variable),
read when the config is loaded so the resolved config names the repository."""

from __future__ import annotations

import pytest

from collapselab.config import config_from_dict, dump_config
from collapselab.errors import ConfigError

BASE = {"experiment": {"name": "x", "task": "qa"}, "data": {"dataset": "squad_v2"}, "arms": [{"name": "a"}]}


def test_the_repository_comes_from_the_environment_when_the_config_names_none(monkeypatch):
    monkeypatch.setenv("HUGGINGFACE_REPO_ID", "lab/collapse-runs")
    cfg = config_from_dict({**BASE, "hub": {"prefix": "{run_id}"}})
    assert cfg.hub.repo_id == "lab/collapse-runs" and "repo_id: lab/collapse-runs" in dump_config(cfg)
    assert config_from_dict({**BASE, "hub": {"repo_id": "me/mine"}}).hub.repo_id == "me/mine"  # the config wins


def test_no_repository_anywhere_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.delenv("HUGGINGFACE_REPO_ID", raising=False)
    with pytest.raises(ConfigError, match=r"hub.repo_id is not given and \$HUGGINGFACE_REPO_ID is not set"):
        config_from_dict({**BASE, "hub": {}})
    monkeypatch.setenv("HUGGINGFACE_REPO_ID", "not a repo id")
    with pytest.raises(ConfigError, match=r"hub.repo_id: String should match pattern .* \(got 'not a repo id'\)"):
        config_from_dict({**BASE, "hub": {}})

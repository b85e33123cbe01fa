"""Ready configs by name: shipped in the package, found from any folder, a local file first."""

from __future__ import annotations

from pathlib import Path

import pytest

from collapselab.config import ConfigError, load_config
from collapselab.config.files import ready_configs, ready_dir, resolve_config

REPO_CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def test_the_package_carries_every_config_of_the_checkout():
    assert ready_configs() == sorted(p.stem for p in REPO_CONFIGS.glob("*.yaml"))
    for name in ready_configs():
        assert (ready_dir() / f"{name}.yaml").read_bytes() == (REPO_CONFIGS / f"{name}.yaml").read_bytes()


@pytest.mark.parametrize("spelling", ["quickstart", "quickstart.yaml", "configs/quickstart.yaml"])
def test_a_ready_config_is_found_from_any_folder(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config(spelling) == ready_dir() / "quickstart.yaml"
    assert load_config(resolve_config(spelling)).experiment.name == "quickstart"


def test_a_file_in_the_working_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.yaml").write_text("experiment: {}\n")
    assert resolve_config("quickstart.yaml") == Path("quickstart.yaml")


def test_a_missing_file_elsewhere_is_not_replaced_by_a_ready_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        resolve_config("experiments/quickstart.yaml")  # a typo'd folder: say so, run nothing
    assert str(e.value) == f"experiments/quickstart.yaml: config file does not exist; ready configs: {', '.join(ready_configs())}"
    with pytest.raises(ConfigError, match="^quikstart: config file does not exist; ready configs: "):
        resolve_config("quikstart")

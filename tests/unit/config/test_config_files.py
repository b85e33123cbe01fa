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


def test_a_ready_config_is_found_by_its_name_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_config("quickstart") == ready_dir() / "quickstart.yaml"
    assert load_config(resolve_config("quickstart")).experiment.name == "quickstart"


def test_a_file_in_the_working_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "quickstart.yaml").write_text("experiment: {}\n")
    assert resolve_config("quickstart.yaml") == Path("quickstart.yaml")
    (tmp_path / "quickstart").write_text("experiment: {}\n")
    assert resolve_config("quickstart") == Path("quickstart")


@pytest.mark.parametrize(("spelling", "nearest"), [
    ("configs/quickstart.yaml", "the ready config 'quickstart' (collapselab run quickstart)"),  # outside a checkout
    ("quickstart.yaml", "the ready config 'quickstart' (collapselab run quickstart)"),
    ("experiments/quickstart.yml", "the ready config 'quickstart' (collapselab run quickstart)"),
    ("quikstart", "the ready config 'quickstart' (collapselab run quickstart)"),
    ("configs/quickstart.yml", "configs/quickstart.yaml"),  # a typo beside the file it meant
    ("configs/my-expriment.yaml", "configs/my-experiment.yaml"),
])
def test_a_path_that_does_not_exist_is_an_error_naming_the_nearest_file_or_ready_config(spelling, nearest, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if spelling.startswith("configs/") and spelling != "configs/quickstart.yaml":
        (tmp_path / "configs").mkdir()
        (tmp_path / "configs" / "quickstart.yaml").write_text("experiment: {}\n")
        (tmp_path / "configs" / "my-experiment.yaml").write_text("experiment: {}\n")
    with pytest.raises(ConfigError) as e:
        resolve_config(spelling)  # never the shipped file in its place
    assert str(e.value) == f"{spelling}: config file does not exist; did you mean {nearest}?; ready configs: {', '.join(ready_configs())}"


def test_a_name_far_from_everything_lists_the_ready_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as e:
        resolve_config("experiments/zzz.yaml")
    assert str(e.value) == f"experiments/zzz.yaml: config file does not exist; ready configs: {', '.join(ready_configs())}"


def test_serve_help_names_ready_configs_that_ship_and_a_name_finds_them():
    import re

    from typer.testing import CliRunner

    from collapselab.cli import app
    from collapselab.config.files import resolve_config, serve_configs_dir

    text = " ".join(CliRunner().invoke(app, ["serve", "--help"], terminal_width=200).output.split())
    named = re.findall(r"configs/[\w/.-]+\.yaml", text)
    assert named and all((serve_configs_dir().parent / p.removeprefix("configs/")).is_file() for p in named), named
    assert resolve_config("secure", ready=serve_configs_dir()) == serve_configs_dir() / "secure.yaml"
    with pytest.raises(ConfigError, match=r"securr: config file does not exist; did you mean the ready config 'secure' \(--config secure\)"):
        resolve_config("securr", ready=serve_configs_dir())


def test_the_serve_configs_are_package_data():
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    assert "configs/serve/*.yaml" in data["tool"]["setuptools"]["package-data"]["collapselab"]

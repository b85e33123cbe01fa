"""Dataset loaders on the real files in ../shared/data: counts match the folder READMEs."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from collapselab.datasets import load_mmlu, load_splits, resolve_dataset_path
from collapselab.datasets.cosmosqa import read_cosmosqa
from collapselab.datasets.squad import read_squad

pytestmark = pytest.mark.integration


@pytest.fixture
def data_env(shared_data, monkeypatch):
    """Resolve datasets by name, as a run with COLLAPSELAB_DATA set does."""
    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    return shared_data


def test_squad_v2_train_subset_and_full_dev(data_env):
    splits = load_splits("squad_v2")
    assert len(splits.train) == 4_719
    assert sum(not r.answers for r in splits.train) == 348
    assert len(splits.test) == 11_873
    assert sum(not r.answers for r in splits.test) == 5_945
    assert len({r.title for r in splits.train}) == 10 and len({r.title for r in splits.test}) == 35
    assert not {r.context for r in splits.train} & {r.context for r in splits.test}
    assert not {r.title for r in splits.train} & {r.title for r in splits.test}
    first = splits.test[0]  # official id and every reference answer, duplicates kept
    assert (first.id, first.answers) == ("56ddde6b9a695914005b9628", ("France",) * 4)
    assert all(r.source == "human" and r.generation is None for r in splits.train + splits.test)


def test_squad_v2_official_subset_agrees_with_eval_form(data_env):
    official = read_squad(data_env / "squad_v2" / "dev-v2.0.subset16articles.json")
    assert len(official) == 6_078 and sum(not r.answers for r in official) == 3_168
    full = {r.id: r for r in load_splits("squad_v2").test}
    assert all(full[r.id].answers == r.answers and full[r.id].context == r.context for r in official)


def test_squad_v1_dev_split_by_article(data_env):
    splits = load_splits("squad_v1.1", seed=0, test_fraction=0.2)
    assert len(splits.train) + len(splits.test) == 10_570
    assert all(r.answers for r in splits.train + splits.test)
    assert not {r.title for r in splits.train} & {r.title for r in splits.test}
    assert not {r.context for r in splits.train} & {r.context for r in splits.test}
    assert len({r.title for r in splits.train + splits.test}) == 48


def test_cosmosqa_choices_reference_and_context_split(data_env):
    records = read_cosmosqa(data_env / "cosmosqa" / "valid.csv")
    assert len(records) == 2_985
    assert all(len(r.choices) == 4 and r.answers == (r.choices[r.label],) for r in records)
    assert Counter(r.label for r in records) == {0: 744, 1: 729, 2: 761, 3: 751}
    assert read_cosmosqa(data_env / "cosmosqa" / "valid.jsonl") == records
    splits = load_splits("cosmosqa", seed=3)
    assert len(splits.train) + len(splits.test) == 2_985
    assert not {r.context for r in splits.train} & {r.context for r in splits.test}


def test_wikitext2_train_and_test(data_env):
    start = time.perf_counter()
    splits = load_splits("wikitext2")
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"loading wikitext2 took {elapsed:.2f}s"
    assert len({r.title for r in splits.train}) == 600 and len({r.title for r in splits.test}) == 60
    assert not {r.title for r in splits.train} & {r.title for r in splits.test}
    assert all(r.text.strip() for r in splits.train + splits.test)
    # Raw text kept as is: every non-blank test line is in exactly one record.
    raw = (data_env / "wikitext2" / "wiki.test.raw").read_text(encoding="utf-8").split("\n")
    assert [line for r in splits.test for line in r.text.split("\n")] == [line for line in raw if line.strip()]
    assert splits.test[0].title == "Robert Boulter"


def test_tinystories_blocks(data_env):
    splits = load_splits("tinystories", seed=0)
    records = splits.train + splits.test
    # The README counts 4,300 blocks split at "\n\n"; two lines there hold a single
    # space, which also separates paragraphs here.
    assert len(records) == 4_302
    assert splits.train[0].text.startswith("Spot. Spot saw the shiny car")
    assert 0.08 < len(splits.test) / len(records) < 0.12
    assert not {r.title for r in splits.train} & {r.title for r in splits.test}


def test_mmlu_test_dev_val(data_env):
    splits = load_splits("mmlu")
    assert len(splits.test) == 14_042 and len({r.subject for r in splits.test}) == 57
    assert len(splits.train) == 285 and Counter(r.subject for r in splits.train) == dict.fromkeys(
        {r.subject for r in splits.test}, 5
    )
    assert Counter("ABCD"[r.label] for r in splits.test) == {"A": 3_222, "B": 3_462, "C": 3_582, "D": 3_776}
    assert all(len(r.choices) == 4 and r.answers == (r.choices[r.label],) for r in splits.test)
    assert len(load_mmlu("val")) == 1_531
    assert len(load_mmlu("test", ["abstract_algebra"])) == 100


def test_explicit_path_wins_without_collapselab_data(shared_data):
    assert resolve_dataset_path("squad_v1.1", shared_data / "squad_v1.1") == shared_data / "squad_v1.1"
    splits = load_splits("squad_v1.1", shared_data / "squad_v1.1" / "dev-v1.1.explorer-eval.json")
    assert len(splits.train) + len(splits.test) == 10_570

"""Dataset loaders on small crafted files: formats, malformed files, splits, subsets, resolution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collapselab.datasets import (
    DatasetError,
    load_mmlu,
    load_splits,
    resolve_dataset_path,
    subset,
    subset_by_title,
)
from collapselab.datasets.cosmosqa import read_cosmosqa
from collapselab.datasets.files import read_records_file
from collapselab.datasets.mmlu import read_mmlu
from collapselab.datasets.squad import read_squad
from collapselab.datasets.tinystories import read_tinystories
from collapselab.datasets.wikitext import read_wikitext
from collapselab.records import Record, RecordError, write_records


def _squad(version: str = "v2.0", with_start: bool = True) -> dict:
    def ans(text: str, start: int) -> dict:
        return {"text": text, "answer_start": start} if with_start else {"text": text}

    return {
        "version": version,
        "data": [
            {
                "title": "Normans",
                "paragraphs": [
                    {
                        "context": "The Normans lived in Normandy, France.",
                        "qas": [
                            {"id": "q1", "question": "Where?", "answers": [ans("France", 31), ans("Normandy, France", 21), ans("France", 31)], "is_impossible": False},
                            {"id": "q2", "question": "When?", "answers": [], "is_impossible": True, "plausible_answers": [ans("then", 0)]},
                        ],
                    }
                ],
            },
            {"title": "Force", "paragraphs": [{"context": "F = ma.", "qas": [{"id": "q3", "question": "F?", "answers": [ans("ma", 4)], "is_impossible": False}]}]},
        ],
    }


def _write_json(path: Path, obj: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


# --- SQuAD -------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_start", [True, False], ids=["official", "eval-only"])
def test_squad_keeps_every_reference_answer_and_marks_unanswerable(tmp_path, with_start):
    records = read_squad(_write_json(tmp_path / "dev.json", _squad(with_start=with_start)))
    assert [r.id for r in records] == ["q1", "q2", "q3"]
    q1, q2, q3 = records
    assert q1.answers == ("France", "Normandy, France", "France")  # duplicates kept for the max-over-references scorer
    assert q1.title == "Normans" and q1.context.startswith("The Normans") and q1.question == "Where?"
    assert q2.answers == ()  # unanswerable: plausible_answers are not references
    assert q3.title == "Force"
    assert all(r.source == "human" and r.generation is None for r in records)


@pytest.mark.parametrize(
    ("breakage", "names"),
    [
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0].pop("question"), ["'q1'", "'question'"]),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][1].pop("id"), ["question 1", "'id'"]),
        (lambda d: d["data"][0]["paragraphs"][0].pop("context"), ["'Normans' paragraph 0", "'context'"]),
        (lambda d: d["data"][0]["paragraphs"][0]["qas"][0]["answers"][1].pop("text"), ["'q1' answer 1", "'text'"]),
        (lambda d: d["data"][1]["paragraphs"][0]["qas"][0].update(is_impossible=True), ["'q3'", "'is_impossible'"]),
        (lambda d: d.pop("data"), ["top level", "'data'"]),
    ],
    ids=["question", "id", "context", "answer-text", "impossible-with-answer", "data"],
)
def test_squad_malformed_names_file_record_and_field(tmp_path, breakage, names):
    obj = _squad()
    breakage(obj)
    path = _write_json(tmp_path / "broken.json", obj)
    with pytest.raises(DatasetError) as err:
        read_squad(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for name in names:
        assert name in message


def test_squad_bad_json_and_empty_v1_answers(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"bad\.json:1:\d+: not valid JSON"):
        read_squad(bad)
    v1 = _squad(version="1.1")
    v1["data"][0]["paragraphs"][0]["qas"][1].pop("is_impossible")
    with pytest.raises(DatasetError, match=r"question 'q2': field 'answers' is empty in a v1 file"):
        read_squad(_write_json(tmp_path / "v1.json", v1))


def test_squad_v2_folder_uses_train_and_dev_files(tmp_path):
    folder = tmp_path / "squad_v2"
    train = _squad()
    train["data"] = [{"title": "Beyonce", "paragraphs": [{"context": "She sang.", "qas": [{"id": "t1", "question": "Who?", "answers": [{"text": "She", "answer_start": 0}]}]}]}]
    _write_json(folder / "train-v2.0.first10articles.json", train)
    _write_json(folder / "dev-v2.0.explorer-eval.json", _squad(with_start=False))
    splits = load_splits("squad_v2", folder)
    assert [r.id for r in splits.train] == ["t1"]
    assert [r.id for r in splits.test] == ["q1", "q2", "q3"]
    assert [f.name for f in splits.files] == ["train-v2.0.first10articles.json", "dev-v2.0.explorer-eval.json"]


# --- CosmosQA ----------------------------------------------------------------------------------

COSMOS_ROWS = [
    {"id": f"H{i}##A##W##Blog_{i // 2}##q{i % 2}_a1##X{i}", "context": f"Context {i // 2}, with a comma.", "question": f"Q{i}?",
     "answer0": "zero", "answer1": "one", "answer2": "two", "answer3": f"three {i}", "label": i % 4}
    for i in range(8)
]


def _cosmos_csv(path: Path, rows: list[dict], header: str = "id,context,question,answer0,answer1,answer2,answer3,label") -> Path:
    import csv

    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header.split(","))
        for row in rows:
            writer.writerow([row.get(k, "") for k in header.split(",")])
    return path


def test_cosmosqa_csv_and_jsonl_agree_and_reference_is_the_labelled_choice(tmp_path):
    from_csv = read_cosmosqa(_cosmos_csv(tmp_path / "valid.csv", COSMOS_ROWS))
    jsonl = tmp_path / "valid.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in COSMOS_ROWS), encoding="utf-8")
    assert read_cosmosqa(jsonl) == from_csv
    r = from_csv[3]
    assert r.choices == ("zero", "one", "two", "three 3") and r.label == 3 and r.answers == ("three 3",)
    assert r.context == "Context 1, with a comma." and r.title == "Blog_1"
    assert from_csv[2].title == "Blog_1"  # two questions on one context share the group key


def test_cosmosqa_same_context_under_two_paragraph_ids_gets_one_title(tmp_path):
    rows = [dict(COSMOS_ROWS[0]), dict(COSMOS_ROWS[2])]
    rows[1]["context"] = rows[0]["context"]  # as happens twice in the real validation file
    titles = {r.title for r in read_cosmosqa(_cosmos_csv(tmp_path / "valid.csv", rows))}
    assert titles == {"Blog_0"}


def test_cosmosqa_malformed(tmp_path):
    with pytest.raises(DatasetError, match=r"wrong\.csv: CSV header lacks column\(s\) \['label'\]"):
        read_cosmosqa(_cosmos_csv(tmp_path / "wrong.csv", COSMOS_ROWS, header="id,context,question,answer0,answer1,answer2,answer3"))
    bad_label = [dict(COSMOS_ROWS[0], label=4)]
    with pytest.raises(DatasetError, match=r"label\.csv:2: record 'H0##.*': field 'label' must be 0-3, got '4'"):
        read_cosmosqa(_cosmos_csv(tmp_path / "label.csv", bad_label))
    jsonl = tmp_path / "missing.jsonl"
    row = {k: v for k, v in COSMOS_ROWS[1].items() if k != "answer2"}
    jsonl.write_text(json.dumps(COSMOS_ROWS[0]) + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"missing\.jsonl:2: record 'H1##.*': missing field 'answer2'"):
        read_cosmosqa(jsonl)
    jsonl.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"missing\.jsonl:1: not valid JSON"):
        read_cosmosqa(jsonl)


def test_cosmosqa_folder_split_keeps_each_context_on_one_side(tmp_path):
    folder = tmp_path / "cosmosqa"
    folder.mkdir()
    _cosmos_csv(folder / "valid.csv", COSMOS_ROWS)
    splits = load_splits("cosmosqa", folder, seed=1, test_fraction=0.3)
    assert len(splits.train) + len(splits.test) == 8 and splits.test
    assert not {r.context for r in splits.train} & {r.context for r in splits.test}


# --- WikiText-2 --------------------------------------------------------------------------------

WIKI = (
    " \n = Alpha = \n \n Alpha is a letter @-@ like thing . \n Second paragraph . \n \n"
    " = = History = = \n \n Key : W \n = Wins , L = \n Losses \n \n"  # a table legend, not an article
    " = Beta = \n \n = = Empty section = = \n \n = Gamma = \n \n Gamma text . \n"
)


def test_wikitext_paragraphs_titled_by_level1_headings_text_raw(tmp_path):
    path = tmp_path / "wiki.test.raw"
    path.write_text(WIKI, encoding="utf-8")
    records = read_wikitext(path)
    assert [(r.id, r.title) for r in records] == [
        ("wiki.test.raw:2", "Alpha"),
        ("wiki.test.raw:5", "Alpha"),
        ("wiki.test.raw:7", "Alpha"),
        ("wiki.test.raw:10", "Alpha"),
        ("wiki.test.raw:13", "Beta"),  # an article with only an empty section
        ("wiki.test.raw:17", "Gamma"),
    ]
    assert records[0].text == " = Alpha = \n Alpha is a letter @-@ like thing . "  # as is, leading space and all
    assert records[2].text == " = = History = = \n Key : W "
    assert records[3].text == " = Wins , L = \n Losses "
    assert records[4].text == " = Beta = \n = = Empty section = = "
    # Every non-blank line is kept exactly once.
    kept = [line for r in records for line in r.text.split("\n")]
    assert kept == [line for line in WIKI.split("\n") if line.strip()]


def test_wikitext_folder_uses_train_and_test_files(tmp_path):
    folder = tmp_path / "wikitext2"
    folder.mkdir()
    (folder / "wiki.train.raw").write_text(" \n = Alpha = \n \n A . \n", encoding="utf-8")
    (folder / "wiki.test.raw").write_text(" \n = Gamma = \n \n G . \n", encoding="utf-8")
    splits = load_splits("wikitext2", folder)
    assert [r.title for r in splits.train] == ["Alpha"] and [r.title for r in splits.test] == ["Gamma"]


# --- TinyStories -------------------------------------------------------------------------------


def test_tinystories_blocks_and_endoftext_stories(tmp_path):
    blocks = tmp_path / "tinystories_valid_prefix.txt"
    blocks.write_text("Once upon a time.\nThe end.\n\nSpot ran.\n \nOne day.\n\n", encoding="utf-8")
    records = read_tinystories(blocks)
    assert [(r.id, r.text) for r in records] == [
        ("tinystories_valid_prefix.txt:1", "Once upon a time.\nThe end."),
        ("tinystories_valid_prefix.txt:4", "Spot ran."),
        ("tinystories_valid_prefix.txt:6", "One day."),  # a line holding a space is blank too
    ]
    assert all(r.title == r.id for r in records)
    stories = tmp_path / "TinyStories-valid.txt"
    stories.write_text("A.\n\nB.\n<|endoftext|>\nC.\n<|endoftext|>\n", encoding="utf-8")
    assert [(r.id, r.text) for r in read_tinystories(stories)] == [
        ("TinyStories-valid.txt:1", "A.\n\nB."),  # exact boundaries: paragraphs stay in their story
        ("TinyStories-valid.txt:5", "C."),
    ]


# --- MMLU --------------------------------------------------------------------------------------


def _mmlu(folder: Path) -> Path:
    for split, n in (("dev", 2), ("val", 1), ("test", 3)):
        for subject in ("anatomy", "virology"):
            (folder / split).mkdir(parents=True, exist_ok=True)
            rows = [f'"{subject} {split} {i}, quoted?",w,"x, y",z\u0085v,t,{"ABCD"[i % 4]}\n' for i in range(n)]
            (folder / split / f"{subject}_{split}.csv").write_text("".join(rows), encoding="utf-8")
    return folder


def test_mmlu_records_splits_and_subjects(tmp_path):
    folder = _mmlu(tmp_path / "mmlu")
    records = read_mmlu(folder / "test" / "anatomy_test.csv")
    r = records[2]
    assert r.id == "anatomy_test:3" and r.subject == "anatomy" and r.question == "anatomy test 2, quoted?"
    assert r.choices == ("w", "x, y", "z\u0085v", "t") and r.label == 2 and r.answers == ("z\u0085v",)
    splits = load_splits("mmlu", folder)
    assert len(splits.train) == 4 and len(splits.test) == 6  # dev exemplars, test questions
    assert len(load_mmlu("val", path=folder)) == 2
    assert {r.subject for r in load_mmlu("test", ["virology"], path=folder)} == {"virology"}
    with pytest.raises(DatasetError, match=r"unknown subject\(s\) \['chemistry'\].*known: anatomy, virology"):
        load_mmlu("test", ["chemistry"], path=folder)


def test_mmlu_malformed(tmp_path):
    folder = tmp_path / "test"
    folder.mkdir()
    path = folder / "anatomy_test.csv"
    path.write_text("q,a,b,c,d,A\nq,a,b,c,d\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"anatomy_test\.csv:2: expected 6 columns .* got 5"):
        read_mmlu(path)
    path.write_text("q,a,b,c,d,E\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"anatomy_test\.csv:1: field 'answer' must be one of A/B/C/D, got 'E'"):
        read_mmlu(path)


# --- generic records files ---------------------------------------------------------------------


def test_generic_jsonl_csv_parquet_round_trip(tmp_path):
    records = [Record(id=f"r{i}", text=f"text {i}", title=f"doc{i // 2}", answers=("a", "b"), label=i) for i in range(6)]
    write_records(tmp_path / "data.jsonl", records)
    write_records(tmp_path / "data.parquet", records)
    (tmp_path / "data.csv").write_text(
        "id,text,title,answers,label\n" + "".join(f'r{i},text {i},doc{i // 2},"[""a"", ""b""]",{i}\n' for i in range(6)),
        encoding="utf-8",
    )
    for name in ("data.jsonl", "data.parquet", "data.csv"):
        assert read_records_file(tmp_path / name) == records, name
    splits = load_splits("jsonl", tmp_path / "data.jsonl", seed=0, test_fraction=0.3)
    assert splits.test and not {r.title for r in splits.train} & {r.title for r in splits.test}


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("a.jsonl", '{"id": "x"}\n{"text": "no id"}\n', r"a\.jsonl:2: record is missing field 'id'"),
        ("b.jsonl", '{"id": "x", "label": "two"}\n', r"b\.jsonl:1: record 'x' field 'label' must be an integer"),
        ("c.jsonl", '{"id": "x", "colour": 1}\n', r"c\.jsonl:1: record 'x' has unknown field\(s\) \['colour'\]"),
        ("d.jsonl", '{"id": "x", "source": "alien"}\n', r"d\.jsonl:1: record 'x': field 'source'"),
        ("e.jsonl", '["x"]\n', r"e\.jsonl:1: expected a JSON object"),
        ("f.csv", "id,colour\nx,red\n", r"f\.csv: header .* unknown column\(s\) \['colour'\]"),
        ("g.csv", 'id,answers\nx,"a, b"\n', r"g\.csv:2: field 'answers' must be a JSON list"),
    ],
)
def test_generic_malformed_names_file_line_and_field(tmp_path, name, content, pattern):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordError, match=pattern):
        read_records_file(path)


def test_generic_needs_a_path():
    with pytest.raises(DatasetError, match=r"dataset 'jsonl' needs data\.path"):
        load_splits("jsonl")


# --- splits and subsets ------------------------------------------------------------------------


def _pool(n: int = 60) -> list[Record]:
    return [Record(id=f"r{i:03d}", text="t", title=f"article{i // 3}") for i in range(n)]


def test_subset_deterministic_ordered_nested():
    pool = _pool()
    a = subset(pool, 10, seed=1)
    assert a == subset(pool, 10, seed=1) and len(a) == 10
    assert a != subset(pool, 10, seed=2)
    assert [pool.index(r) for r in a] == sorted(pool.index(r) for r in a)  # original order
    assert set(a) <= set(subset(pool, 20, seed=1))  # growing train_size only adds records
    assert subset(pool, None, 0) == pool and subset(pool, 999, 0) == pool


def test_subset_is_stable_across_python_hash_seeds():
    code = (
        "from collapselab.datasets import subset, subset_by_title; from collapselab.records import Record;"
        "p=[Record(id=f'r{i}', title=f't{i//3}') for i in range(50)];"
        "print([r.id for r in subset(p, 7, 3)], [r.id for r in subset_by_title(p, 7, 3)])"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": s}, capture_output=True, text=True, check=True).stdout
        for s in ("1", "2")
    }
    assert len(outputs) == 1


def test_subset_by_title_takes_few_whole_titles():
    pool = _pool()
    picked = subset_by_title(pool, 7, seed=0)
    assert len(picked) == 7 and picked == subset_by_title(pool, 7, seed=0)
    assert len({r.title for r in picked}) == 3  # two whole articles of 3 and one cut to 1


def test_split_by_title_disjoint_deterministic_and_seeded(tmp_path):
    path = tmp_path / "pool.jsonl"
    write_records(path, _pool())
    s1 = load_splits("records", path, seed=0, test_fraction=0.2)
    assert not {r.title for r in s1.train} & {r.title for r in s1.test}
    assert 12 <= len(s1.test) <= 14 and len(s1.train) + len(s1.test) == 60
    assert s1.test == load_splits("records", path, seed=0, test_fraction=0.2).test
    assert s1.test != load_splits("records", path, seed=5, test_fraction=0.2).test
    with pytest.raises(DatasetError, match=r"test_fraction must be in \(0, 1\)"):
        load_splits("records", path, test_fraction=1.0)


def test_duplicate_ids_are_refused(tmp_path):
    path = tmp_path / "dup.jsonl"
    write_records(path, [Record(id="a", title="x"), Record(id="a", title="y")])
    with pytest.raises(DatasetError, match=r"duplicate record id 'a'"):
        load_splits("jsonl", path)


# --- resolution --------------------------------------------------------------------------------


def test_resolution_finds_collapselab_data_folder(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "tinystories"
    folder.mkdir(parents=True)
    (folder / "tinystories_valid_prefix.txt").write_text("".join(f"Story {i}.\n\n" for i in range(20)), encoding="utf-8")
    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path / "data"))
    assert resolve_dataset_path("tinystories", None) == folder
    splits = load_splits("tinystories")
    assert len(splits.train) + len(splits.test) == 20 and len(splits.test) == 2


def test_missing_dataset_error_names_files_and_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path / "empty"))
    monkeypatch.delenv("COLLAPSELAB_OFFLINE", raising=False)
    with pytest.raises(DatasetError) as err:
        load_splits("squad_v2")
    message = str(err.value)
    assert "\n" not in message
    for part in ("'squad_v2'", "dev-v2.0.explorer-eval.json", "$COLLAPSELAB_DATA/squad_v2/", "data.path", "HF_HUB_OFFLINE=1"):
        assert part in message


def test_incomplete_folder_and_missing_path_and_unknown_name(tmp_path, monkeypatch):
    (tmp_path / "wikitext2").mkdir()
    (tmp_path / "wikitext2" / "wiki.train.raw").write_text(" = A = \n", encoding="utf-8")
    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=r"lacks the expected files \(wiki\.train\.raw \+ wiki\.test\.raw\)"):
        load_splits("wikitext2")
    with pytest.raises(DatasetError, match=r"data\.path .*nowhere does not exist"):
        load_splits("wikitext2", tmp_path / "nowhere")
    with pytest.raises(DatasetError, match=r"unknown dataset 'squad'; known: squad_v2, squad_v1\.1, cosmosqa"):
        load_splits("squad")


def test_download_when_online_into_cache(tmp_path, monkeypatch):
    # A file:// URL stands in for the web; the offline switches set by conftest are lifted.
    from collapselab.datasets import registry, resolve

    source_file = tmp_path / "src" / "TinyStories-valid.txt"
    source_file.parent.mkdir()
    source_file.write_text("A.\n<|endoftext|>\nB.\n<|endoftext|>\n", encoding="utf-8")
    source = registry.Source(read_tinystories, registry.DATASETS["tinystories"].layouts, "tinystories",
                             (registry.Download(source_file.as_uri()),))
    monkeypatch.setitem(registry.DATASETS, "tinystories", source)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("COLLAPSELAB_OFFLINE", raising=False)
    monkeypatch.setattr(resolve, "is_online", lambda host, timeout=2.0: True)
    path = resolve_dataset_path("tinystories")
    assert path == Path(os.environ["COLLAPSELAB_CACHE"]) / "datasets" / "tinystories"
    splits = load_splits("tinystories")
    assert sorted(r.text for r in splits.train + splits.test) == ["A.", "B."]


def test_generic_folder_with_train_and_test_files(tmp_path):
    write_records(tmp_path / "train.parquet", [Record(id="a", text="x", title="t1")])
    write_records(tmp_path / "test.parquet", [Record(id="b", text="y", title="t1")])
    splits = load_splits("records", tmp_path)
    assert ([r.id for r in splits.train], [r.id for r in splits.test]) == (["a"], ["b"])  # given splits are kept as is
    assert [f.name for f in splits.files] == ["train.parquet", "test.parquet"]

"""Records read from files: every form of `answers` a user has, and wrong types refused by name."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collapselab.datasets import load_splits
from collapselab.datasets.files import read_records_file
from collapselab.records import Record, RecordError, read_records, record_from_dict


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["Normandy", "in Normandy"], ("Normandy", "in Normandy")),
        # Hugging Face datasets' SQuAD form: the texts, never the dict's keys
        ({"text": ["Normandy", "France"], "answer_start": [21, 33]}, ("Normandy", "France")),
        ({"text": [], "answer_start": []}, ()),  # unanswerable
        ([{"text": "Normandy", "answer_start": 21}], ("Normandy",)),  # official SQuAD answer objects
        (None, ()),
    ],
)
def test_answers_in_every_form_a_file_has(answers, expected):
    assert record_from_dict({"id": "q", "answers": answers}).answers == expected


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "q", "answers": {"answer_start": [3]}}, "f.jsonl:4: record 'q': field 'answers' is an object without 'text' (keys ['answer_start']); expected a list of strings or {\"text\": [...]}"),
        ({"id": "q", "answers": "Normandy"}, "f.jsonl:4: record 'q': field 'answers' must be a list of strings, got str 'Normandy'"),
        ({"id": "q", "answers": ["a", 7]}, "f.jsonl:4: record 'q': field 'answers' item 1 must be a string, got int 7"),
        ({"id": "q", "answers": {"text": "Normandy"}}, "f.jsonl:4: record 'q': field 'answers.text' must be a list of strings, got str 'Normandy'"),
        ({"id": "q", "choices": [1, 2]}, "f.jsonl:4: record 'q': field 'choices' item 0 must be a string, got int 1"),
        ({"id": "q", "text": 5}, "f.jsonl:4: record 'q' field 'text' must be a string, got int 5"),
        ({"id": ["q"]}, "f.jsonl:4: field 'id' must be a string, got list ['q']"),
        ({"question": "?"}, "f.jsonl:4: record is missing field 'id'"),
    ],
)
def test_wrong_types_are_refused_naming_file_record_and_field(row, message):
    with pytest.raises(RecordError) as e:
        record_from_dict(row, where="f.jsonl:4")
    assert str(e.value) == message


def test_a_record_built_in_code_cannot_hold_a_dict_of_answers():
    # The last line of defence for every construction path (loaders, refinery, tasks).
    with pytest.raises(RecordError, match="field 'answers' must be a list of strings"):
        Record(id="q", answers={"text": ["a"], "answer_start": [0]})
    assert Record(id="q", answers=["a"]).answers == ("a",)


def test_hf_parquet_with_struct_answers_reads_the_texts(tmp_path):
    # What `datasets.Dataset.to_parquet` writes for SQuAD: answers is a struct of two lists.
    table = pa.table({
        "id": ["q1", "q2"],
        "context": ["The Normans lived in Normandy.", "x"],
        "question": ["Where?", "Who?"],
        "answers": [{"text": ["Normandy"], "answer_start": [21]}, {"text": [], "answer_start": []}],
    })
    pq.write_table(table, tmp_path / "train.parquet")
    assert [r.answers for r in read_records_file(tmp_path / "train.parquet")] == [("Normandy",), ()]
    assert [r.answers for r in read_records(tmp_path / "train.parquet")] == [("Normandy",), ()]


def test_hf_jsonl_through_the_dataset_loader(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        with (tmp_path / f"{split}.jsonl").open("w") as f:
            for i in range(n):
                row = {"id": f"{split}{i}", "title": f"t{i}", "context": "c", "question": "q",
                       "answers": {"text": [f"a{i}", f"b{i}"], "answer_start": [0, 2]}}
                f.write(json.dumps(row) + "\n")
    splits = load_splits("jsonl", tmp_path)
    assert [r.answers for r in splits.test] == [("a0", "b0"), ("a1", "b1")]


def test_jsonl_records_file_errors_name_the_line(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_bytes(b'{"id": "a"}\n{"id": "caf\xe9"}\n')
    with pytest.raises(RecordError, match=rf"^{p}:2: not UTF-8 text"):
        read_records(p)
    p.write_text('{"id": "a"}\n[1, 2]\n')
    with pytest.raises(RecordError, match=rf"^{p}:2: expected a record object, got list$"):
        read_records(p)


def test_official_squad_with_hf_answers_is_refused_not_misread(tmp_path):
    # The official format has a list of answer objects; a dict there is refused by name.
    qa = {"id": "q1", "question": "Where?", "answers": {"text": ["Normandy"], "answer_start": [21]}}
    data = {"version": "v2.0", "data": [{"title": "T", "paragraphs": [{"context": "in Normandy", "qas": [qa]}]}]}
    (tmp_path / "dev.json").write_text(json.dumps(data))
    from collapselab.datasets import DatasetError
    from collapselab.datasets.squad import read_squad

    with pytest.raises(DatasetError, match=r"dev\.json: question 'q1': field 'answers' must be list, got dict"):
        read_squad(tmp_path / "dev.json")

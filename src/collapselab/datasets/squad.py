"""SQuAD v1.1 / v2.0 in the official JSON format, and its evaluation-only form.

The evaluation-only files (`*.explorer-eval.json`) have no `answer_start` and no
`plausible_answers`; neither is read here, so both forms load the same way.
"""

from __future__ import annotations

from pathlib import Path

from collapselab.records import Record

from .errors import DatasetError, require
from .files import load_json


def read_squad(path: Path) -> list[Record]:
    """Read a SQuAD JSON file into one `qa` record per question.

    Args:
        path: `{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`.

    Returns:
        Records with the official question id, title (the article), context, question
        and answers: every reference answer text as given, duplicates kept, since the
        official scorer takes the max over them. An unanswerable v2 question has none.

    Raises:
        DatasetError: naming the file, the question (id or position) and the field.
    """
    obj = load_json(path)
    articles = require(obj, "data", list, f"{path}: top level")
    # v1.1 has no unanswerable questions: an empty answer list there is a broken file.
    needs_answer = str(obj.get("version", "")).lstrip("v").startswith("1")
    records = []
    for a, article in enumerate(articles):
        where = f"{path}: article {a}"
        title = require(article, "title", str, where)
        where = f"{path}: article {title!r}"
        for p, paragraph in enumerate(require(article, "paragraphs", list, where)):
            where = f"{path}: article {title!r} paragraph {p}"
            context = require(paragraph, "context", str, where)
            for q, qa in enumerate(require(paragraph, "qas", list, where)):
                qid = require(qa, "id", str, f"{where} question {q}")
                record = _record(qa, qid, title, context, f"{path}: question {qid!r}")
                if needs_answer and not record.answers:
                    raise DatasetError(f"{path}: question {qid!r}: field 'answers' is empty in a v1 file")
                records.append(record)
    return records


def _record(qa: dict, qid: str, title: str, context: str, where: str) -> Record:
    question = require(qa, "question", str, where)
    answers = tuple(
        require(answer, "text", str, f"{where} answer {k}")
        for k, answer in enumerate(require(qa, "answers", list, where))
    )
    # v2 marks unanswerable questions twice; a file where the marks disagree is corrupt,
    # and scoring it would silently count answerable questions as no-answer ones.
    impossible = qa.get("is_impossible")
    if impossible is not None and bool(impossible) == bool(answers):
        raise DatasetError(
            f"{where}: field 'is_impossible' is {impossible} but the question has {len(answers)} answer(s)"
        )
    return Record(id=qid, title=title, context=context, question=question, answers=answers)

"""MMLU accuracy per subject and subject group, for causal and seq2seq models.

Prompt formats (`fmt`):
- `zero_shot`: the standard header "The following are multiple choice questions (with
  answers) about <subject>.", the question, options "A. ..".."D. ..", then "Answer:";
- `few_shot`: the same header, then the subject's dev questions with their answers, then
  the question (the original MMLU 5-shot prompt);
- `no_instruction`: question, options and "Answer:" without the header;
- `short_answer`: "Question: ...\\nAnswer:" with no options shown; the model must say the
  answer itself.

Scoring (`scoring`):
- `loglik`: the option with the highest log-likelihood as the continuation: " A".." D"
  (sum of token log-probs) in the lettered formats, " <option text>" (mean log-prob per
  token, so long options are not penalised) in `short_answer`;
- `generate`: greedy generation; lettered formats take the first standalone letter A-D in
  the output, `short_answer` the option with the best SQuAD token F1 against it; no
  match counts as wrong.

The greedy proportion is the share of questions whose chosen option is also the option
parsed from the greedy generation (1.0 by construction when scoring is `generate`).
Subject groups follow the original MMLU categories (hendrycks/test `categories.py`).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collapselab.metrics.qa import token_f1
from collapselab.metrics.registry import register_computed
from collapselab.records import Record

LETTERS = ("A", "B", "C", "D")
FORMATS = ("zero_shot", "few_shot", "short_answer", "no_instruction")
SCORINGS = ("loglik", "generate")
CHANCE = 0.25

# The accuracies in metrics.json (tasks/mcq.py): the first configured format's
# `mmlu_accuracy`, per group `mmlu_accuracy.group.<group>` and per subject
# `mmlu_accuracy.subject.<subject>`; every further format's `mmlu_<format>_accuracy[...]`.
_PARTS = (  # (how the part is written, its pattern, its label, what it counts)
    ("", "", "", "all chosen questions"),
    (".group.<group>", r"\.group\.(?P<group>.+)", ", {group}", "one subject group"),
    (".subject.<subject>", r"\.subject\.(?P<subject>.+)", ", {subject}", "one subject"),
)
for _part, _pattern, _label, _what in _PARTS:
    register_computed(f"mmlu_accuracy{_part}", pattern=rf"mmlu_accuracy{_pattern}" if _part else None,
                      higher_is_better=True, version="1", label=f"MMLU accuracy{_label}", unit="0-1",
                      description=f"Share of MMLU questions ({_what}) answered right in the first prompt format (chance 0.25).",
                      computed_by="tasks/mcq.py (evaluation.mmlu)")
    register_computed(f"mmlu_<format>_accuracy{_part}", pattern=rf"mmlu_(?P<format>{'|'.join(FORMATS)})_accuracy{_pattern}",
                      higher_is_better=True, version="1", label=f"MMLU accuracy ({{format}}){_label}", unit="0-1",
                      description=f"Share of MMLU questions ({_what}) answered right in a further prompt format (chance 0.25).",
                      computed_by="tasks/mcq.py (evaluation.mmlu)")


_SUBCATEGORY = {
    "math": "abstract_algebra college_mathematics elementary_mathematics high_school_mathematics high_school_statistics",
    "health": "anatomy clinical_knowledge college_medicine human_aging medical_genetics nutrition professional_medicine virology",
    "physics": "astronomy college_physics conceptual_physics high_school_physics",
    "business": "business_ethics management marketing",
    "biology": "college_biology high_school_biology",
    "chemistry": "college_chemistry high_school_chemistry",
    "computer science": "college_computer_science computer_security high_school_computer_science machine_learning",
    "economics": "econometrics high_school_macroeconomics high_school_microeconomics",
    "engineering": "electrical_engineering",
    "philosophy": "formal_logic logical_fallacies moral_disputes moral_scenarios philosophy world_religions",
    "other": "global_facts miscellaneous professional_accounting",
    "history": "high_school_european_history high_school_us_history high_school_world_history prehistory",
    "geography": "high_school_geography",
    "politics": "high_school_government_and_politics public_relations security_studies us_foreign_policy",
    "psychology": "high_school_psychology professional_psychology",
    "culture": "human_sexuality sociology",
    "law": "international_law jurisprudence professional_law",
}
_GROUP = {
    "STEM": ("physics", "chemistry", "biology", "computer science", "math", "engineering"),
    "humanities": ("history", "philosophy", "law"),
    "social sciences": ("politics", "culture", "economics", "geography", "psychology"),
    "other": ("other", "business", "health"),
}
SUBJECT_GROUP: dict[str, str] = {
    subject: group
    for group, subs in _GROUP.items() for sub in subs for subject in _SUBCATEGORY[sub].split()
}


def load_mmlu(root: str | Path, split: str = "test", subjects: Sequence[str] | None = None,
              per_subject: int | None = None) -> list[Record]:
    """Questions from the original MMLU CSVs (`<root>/<split>/<subject>_<split>.csv`)."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: MMLU split folder does not exist")
    names = list(subjects) if subjects else sorted(p.name.removesuffix(f"_{split}.csv") for p in folder.glob(f"*_{split}.csv"))
    out = []
    for subject in names:
        path = folder / f"{subject}_{split}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path}: no MMLU file for subject {subject!r}")
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        for i, row in enumerate(rows[:per_subject]):
            if len(row) != 6 or row[5] not in LETTERS:
                raise ValueError(f"{path} row {i + 1}: expected question, 4 options and a letter A-D")
            out.append(Record(id=f"{subject}/{split}/{i}", question=row[0], choices=tuple(row[1:5]),
                              label=LETTERS.index(row[5]), subject=subject))
    return out


def _subject_words(subject: str) -> str:
    return subject.replace("_", " ")


def _question_block(r: Record, with_options: bool) -> str:
    if not with_options:
        return f"Question: {r.question}\nAnswer:"
    options = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, r.choices, strict=True))
    return f"{r.question}{options}\nAnswer:"


def build_prompt(r: Record, fmt: str, dev_records: Sequence[Record] = ()) -> str:
    """The prompt of one question in one of `FORMATS` (few-shot uses `dev_records` of its subject)."""
    header = f"The following are multiple choice questions (with answers) about {_subject_words(r.subject or '')}.\n\n"
    if fmt == "zero_shot":
        return header + _question_block(r, True)
    if fmt == "no_instruction":
        return _question_block(r, True)
    if fmt == "short_answer":
        return _question_block(r, False)
    if fmt == "few_shot":
        shots = [d for d in dev_records if d.subject == r.subject]
        if not shots:
            raise ValueError(f"few_shot prompt for {r.id}: no dev questions of subject {r.subject!r}")
        examples = "".join(f"{_question_block(d, True)} {LETTERS[d.label]}\n\n" for d in shots)
        return header + examples + _question_block(r, True)
    raise ValueError(f"unknown MMLU prompt format {fmt!r}; expected one of {FORMATS}")


def continuations(r: Record, fmt: str) -> list[str]:
    """What each option looks like as the text after the prompt."""
    if fmt == "short_answer":
        return [f" {c}" for c in r.choices]
    return [f" {letter}" for letter in LETTERS]


_LETTER = re.compile(r"\b([ABCD])\b")


def parse_generation(text: str, r: Record, fmt: str) -> int:
    """The option a generated answer names, or -1 when it names none."""
    if fmt != "short_answer":
        m = _LETTER.search(text)
        if m:
            return LETTERS.index(m.group(1))
    f1 = [token_f1(text, [c]) if text.strip() else 0.0 for c in r.choices]
    best = max(range(len(f1)), key=f1.__getitem__)
    return best if f1[best] > 0 else -1


@dataclass(slots=True)
class MMLUResult:
    accuracy: float
    per_subject: dict[str, float]
    per_group: dict[str, float]
    correct: list[float]  # per question, in input order
    chosen: list[int]  # option index picked per question (-1: none)
    greedy_proportion: float | None
    fmt: str
    scoring: str
    details: dict[str, object] = field(default_factory=dict)


def evaluate_mmlu(model, tokenizer, records: Sequence[Record], *, fmt: str = "zero_shot", scoring: str = "loglik",
                  dev_records: Sequence[Record] = (), greedy_check: bool = True, max_new_tokens: int = 8,
                  batch_tokens: int = 4096, max_length: int = 2048, device: str = "cpu") -> MMLUResult:
    """Accuracy of `model` on MMLU `records`, per subject and group, with the greedy proportion."""
    from collapselab.metrics import mmlu_scoring

    if fmt not in FORMATS or scoring not in SCORINGS:
        raise ValueError(f"fmt {fmt!r} / scoring {scoring!r}: expected one of {FORMATS} / {SCORINGS}")
    if not records:
        raise ValueError("no MMLU questions to evaluate")
    prompts = [build_prompt(r, fmt, dev_records) for r in records]
    greedy: list[int] | None = None
    if scoring == "generate" or greedy_check:
        texts = mmlu_scoring.greedy_generate(model, tokenizer, prompts, max_new_tokens, batch_tokens, max_length, device)
        greedy = [parse_generation(t, r, fmt) for t, r in zip(texts, records, strict=True)]
    if scoring == "loglik":
        conts = [continuations(r, fmt) for r in records]
        scores = mmlu_scoring.option_logprobs(model, tokenizer, prompts, conts, mean=fmt == "short_answer",
                                              batch_tokens=batch_tokens, max_length=max_length, device=device)
        chosen = [max(range(len(s)), key=s.__getitem__) for s in scores]
    else:
        chosen = list(greedy)
    correct = [float(c == r.label) for c, r in zip(chosen, records, strict=True)]
    by_subject: dict[str, list[float]] = defaultdict(list)
    by_group: dict[str, list[float]] = defaultdict(list)
    for r, c in zip(records, correct, strict=True):
        by_subject[r.subject or ""].append(c)
        by_group[SUBJECT_GROUP.get(r.subject or "", "unknown")].append(c)
    proportion = None if greedy is None else sum(g == c for g, c in zip(greedy, chosen, strict=True)) / len(chosen)
    counts = {LETTERS[i]: chosen.count(i) for i in range(4)}
    return MMLUResult(
        accuracy=sum(correct) / len(correct),
        per_subject={s: sum(v) / len(v) for s, v in sorted(by_subject.items())},
        per_group={g: sum(v) / len(v) for g, v in sorted(by_group.items())},
        correct=correct, chosen=chosen, greedy_proportion=proportion, fmt=fmt, scoring=scoring,
        details={"n": len(records), "chance": CHANCE, "chosen_counts": counts, "no_option": chosen.count(-1)},
    )

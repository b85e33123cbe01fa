"""ROUGE equals rouge-score's own numbers; unanswerable questions follow the no-answer rule."""

from __future__ import annotations

import pytest
from rouge_score import rouge_scorer

from collapselab.metrics import EvalInputs, evaluate
from collapselab.metrics.overlap import rouge_f
from collapselab.records import Record

CASES = [
    ("the cat sat on the mat", ["a cat sat on a mat", "the dog ran"]),
    ("Denver Broncos", ["Denver Broncos", "The Broncos"]),
    ("in the late 10th century", ["10th century", "in the 10th century"]),
    ("completely unrelated words", ["Normandy"]),
]


@pytest.mark.parametrize(("pred", "refs"), CASES)
def test_rouge_equals_rouge_score_best_reference(pred, refs):
    direct = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])
    got = rouge_f(pred, refs)
    for t in ("rouge1", "rouge2", "rougeL"):
        # Independent route: score each reference separately and keep the best.
        assert got[t] == pytest.approx(max(direct.score(r, pred)[t].fmeasure for r in refs))


def test_registered_rouge_applies_no_answer_rule():
    test = [Record(id="a", answers=("red dog",)), Record(id="b"), Record(id="c")]
    out = evaluate(["rouge1", "rouge2", "rougeL"], EvalInputs(task="qa", test=test, predictions=["red", "", "x"]))
    # "red" vs "red dog": P = 1, R = 1/2, F = 2/3; empty on unanswerable = 1; "x" on unanswerable = 0.
    assert out["rouge1"].per_example == pytest.approx([2 / 3, 1.0, 0.0])
    assert out["rouge2"].per_example == pytest.approx([0.0, 1.0, 0.0])
    assert out["rouge1"].details["NoAns"] == pytest.approx(0.5)

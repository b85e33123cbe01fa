"""QA metrics on hand-worked examples: normalisation, EM, F1, the v2 no-answer rule."""

from __future__ import annotations

import pytest

from collapselab.metrics import EvalInputs, evaluate
from collapselab.metrics.qa import (
    answer_in_context,
    exact_match,
    jaccard,
    normalize_answer,
    squad_eval,
    token_f1,
)
from collapselab.records import Record


def test_normalisation_lowercases_strips_punctuation_articles_and_whitespace():
    assert normalize_answer("  The Cat's,   HAT!  ") == "cats hat"
    # Articles go only as whole words; punctuation goes before articles are matched.
    assert normalize_answer("Another theory (a.k.a. the best)") == "another theory aka best"
    assert normalize_answer("An apple") == "apple"


def test_exact_match_takes_the_best_reference():
    assert exact_match("the Eiffel tower.", ["Paris", "Eiffel Tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0


def test_f1_is_bag_of_tokens_against_best_reference():
    # pred {big, red, dog}, gold {red, dog, barked}: 2 shared, P = R = 2/3.
    assert token_f1("big red dog", ["the red dog barked"]) == pytest.approx(2 / 3)
    # Repeated tokens count with multiplicity: pred [dog dog], gold [dog]: P = 1/2, R = 1.
    assert token_f1("dog dog", ["dog", "cat"]) == pytest.approx(2 * 0.5 * 1 / 1.5)


def test_v2_no_answer_rule():
    assert exact_match("", []) == 1.0 and token_f1("", []) == 1.0
    assert exact_match("anything", []) == 0.0 and token_f1("anything", []) == 0.0
    assert exact_match("", ["Paris"]) == 0.0 and token_f1("", ["Paris"]) == 0.0
    # A reference that normalises to nothing is dropped, as in the official script.
    assert exact_match("", ["The"]) == 1.0
    # Punctuation-only predictions normalise to the empty answer.
    assert exact_match("...", []) == 1.0


def test_squad_eval_breaks_down_has_and_no_answer():
    preds = ["Paris", "", "London", "x"]
    refs = [("Paris",), ("Rome",), (), ()]
    out = squad_eval(preds, refs)
    assert out["exact"] == pytest.approx(25.0)
    assert out["HasAns_exact"] == pytest.approx(50.0) and out["HasAns_total"] == 2
    assert out["NoAns_exact"] == pytest.approx(0.0) and out["NoAns_total"] == 2


def test_jaccard_and_answer_in_context():
    # {red, dog} vs {red, cat}: 1 shared of 3.
    assert jaccard("red dog", ["the red cat"]) == pytest.approx(1 / 3)
    assert jaccard("", []) == 1.0 and jaccard("", ["x"]) == 0.0
    ctx = "The Normans were in Normandy, a region in France."
    assert answer_in_context("normandy", ctx)
    assert not answer_in_context("Norman", ctx)  # whole tokens only
    assert answer_in_context("", ctx)


def test_registered_metrics_read_predictions_and_answers():
    test = [
        Record(id="a", context="Paris is in France.", question="q", answers=("Paris",)),
        Record(id="b", context="Rome is in Italy.", question="q", answers=()),
    ]
    out = evaluate(["exact_match", "f1", "jaccard", "answer_length", "answer_in_context"],
                   EvalInputs(task="qa", test=test, predictions=["Paris", "Milan"]))
    assert out["exact_match"].value == pytest.approx(50.0)
    assert out["exact_match"].per_example == [100.0, 0.0]
    assert out["exact_match"].details["HasAns"] == 100.0 and out["exact_match"].details["NoAns"] == 0.0
    assert out["exact_match"].version == "1" and out["exact_match"].higher_is_better
    assert out["answer_length"].value == pytest.approx(1.0)
    assert out["answer_in_context"].per_example == [1.0, 0.0]


def test_prediction_count_must_match_test_set():
    test = [Record(id="a", answers=("x",))]
    with pytest.raises(ValueError, match="one prediction per test record"):
        evaluate(["f1"], EvalInputs(task="qa", test=test, predictions=["x", "y"]))


def test_synthetic_success_rate_counts_answers_found_in_their_context_and_abstentions():
    from collapselab.metrics import EvalInputs, evaluate
    from collapselab.records import Record

    ctx = "The Eiffel Tower is in Paris and was finished in 1889."
    synthetic = [
        Record(id="a", source="synthetic", generation=0, context=ctx, question="q", answers=("Paris",)),
        Record(id="b", source="synthetic", generation=0, context=ctx, question="q", answers=("the year 1889",)),  # not verbatim
        Record(id="c", source="synthetic", generation=0, context=ctx, question="q", answers=()),  # abstains: invents nothing
        Record(id="d", source="synthetic", generation=0, context=ctx, question="q", answers=("London",)),
    ]
    r = evaluate(["synthetic_success_rate"], EvalInputs(task="qa", test=[], synthetic=synthetic))["synthetic_success_rate"]
    assert r.value == 0.5 and r.per_example == [1.0, 0.0, 1.0, 0.0]
    assert r.details == {"records": 4, "abstained": 1, "answered_in_context": 1 / 3}


def test_has_ans_f1_and_no_ans_accuracy_score_each_question_of_their_kind_only():
    from collapselab.tasks.scoring import per_example

    test = [Record(id="a", context="Paris is in France.", question="Where is Paris?", answers=("France",)),
            Record(id="b", context="Paris is in France.", question="Who built it?", answers=()),
            Record(id="c", context="Rome is in Italy.", question="Where is Rome?", answers=("Italy",))]
    out = evaluate(["has_ans_f1", "no_ans_accuracy"], EvalInputs(task="qa", test=test, predictions=["in France", "", "Spain"]))
    assert out["has_ans_f1"].per_example == [pytest.approx(200 / 3), None, 0.0]
    assert out["has_ans_f1"].value == pytest.approx(100 / 3)
    assert out["no_ans_accuracy"].per_example == [None, 100.0, None] and out["no_ans_accuracy"].value == 100.0
    # stored per question: an unanswerable question has no HasAns F1 (not a 0 that would drag a paired comparison)
    scores = per_example(out, ["a", "b", "c"], "test")
    assert scores["b"] == {"no_ans_accuracy": 100.0} and set(scores["a"]) == {"has_ans_f1"}

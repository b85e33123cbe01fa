"""A check's expression: terms, coefficients, parentheses, and the errors that name what is wrong."""

from __future__ import annotations

import re

import pytest

from collapselab.reproduce.claims import term_metric
from collapselab.reproduce.expressions import ExpressionError, Term, parse


def _coeffs(text: str) -> dict[str, float]:
    parsed = parse(text)
    return {str(t): c for t, c in parsed.terms} | ({"const": parsed.constant} if parsed.constant else {})


def test_a_difference_of_two_terms():
    assert _coeffs("replace.g4 - replace.g0") == {"replace.g4": 1.0, "replace.g0": -1.0}


def test_arm_names_may_hold_dashes_and_dots():
    assert parse("real-0pct.g2 - ratio-0.5.g2").terms == ((Term("real-0pct", 2), 1.0), (Term("ratio-0.5", 2), -1.0))


def test_parentheses_coefficients_constants_and_division():
    assert _coeffs("(a.g2 - a.g0) - (b.g2 - b.g0)") == {"a.g2": 1, "a.g0": -1, "b.g2": -1, "b.g0": 1}
    assert _coeffs("(2*a.g4 + a.g3 - a.g1 - 2*a.g0) / 10") == {"a.g4": 0.2, "a.g3": 0.1, "a.g1": -0.1, "a.g0": -0.2}
    assert _coeffs("a.g1 * 3 + 0.5") == {"a.g1": 3.0, "const": 0.5}
    assert _coeffs("- a.g1 + a.g1 + a.g2") == {"a.g2": 1.0}  # equal terms add up; a zero coefficient goes


def test_a_term_may_name_a_metric_and_a_detail():
    (term, _), = parse("a.g2:synthetic_perplexity.p99").terms
    assert term == Term("a", 2, "synthetic_perplexity.p99")
    assert term_metric(term, "perplexity") == ("synthetic_perplexity", ["p99"])
    assert term_metric(Term("a", 2), "perplexity") == ("perplexity", [])
    # a registered name with dots (an MMLU subject's accuracy) is read whole
    assert term_metric(Term("a", 2, "mmlu_accuracy.subject.world_religions"), "x") == ("mmlu_accuracy.subject.world_religions", [])


def test_value_is_the_combination_of_the_looked_up_numbers():
    numbers = {Term("a", 2): 5.0, Term("a", 0): 2.0, Term("b", 2): 4.0}
    assert parse("(a.g2 - a.g0) - 2*b.g2 + 1").value(numbers.__getitem__) == pytest.approx(3.0 - 8.0 + 1.0)


@pytest.mark.parametrize(("text", "message"), [
    ("a.g1 * b.g2", "a product of two terms is not linear"),
    ("a.g1 / b.g1", "divide only by a number other than 0"),
    ("a.g1 / 0", "divide only by a number other than 0"),
    ("(a.g1 - a.g0", "ends where ')' was expected"),
    ("a.g1 -", "ends where a number, a term"),
    ("? - a.g0", "'?' is not a number, a term"),
    ("a.g1 ? a.g0", "unexpected '?'"),
    ("a.gx - a.g0", "'a.gx' is not a number, a term"),
    ("3 - 1", "no term"),
    ("a.g1 a.g0", "unexpected 'a.g0'"),
    ("", "empty expression"),
])
def test_errors_say_what_is_wrong(text, message):
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(text)

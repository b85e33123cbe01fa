"""A check's expression: a linear combination of one run's numbers, evaluated per seed.

    replace.g4 - replace.g0                         the rise of the replace arm over 4 generations
    replace.g4 - accumulate.g4                      replace ends above accumulate (same seed: paired)
    (real-0pct.g2 - real-0pct.g0) - (real-10pct.g2 - real-10pct.g0)
    real-0pct.g2:synthetic_perplexity.p99 - real-0pct.g0:synthetic_perplexity.p99
    ratio-0.5.g4:gibberish_score - ratio-0.5.g0:gibberish_score + 0.3

A term is `ARM.gN` (the claim's metric at generation N of ARM), `ARM.gN:METRIC` (another
metric) or `ARM.gN:METRIC.DETAIL` (a number in the metric's details, e.g. a quantile). Numbers
are constants or coefficients (`2*a.g2`, `a.g2 / 2`); `+`, `-`, `*`, `/` and parentheses.
`+` and `-` are written with spaces around them, because arm names may hold `-` (and `.`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_TERM = re.compile(r"^(?P<arm>[A-Za-z0-9_.\-]+)\.g(?P<generation>\d+)(?::(?P<metric>[A-Za-z0-9_.\-]+))?$")
_NUMBER = re.compile(r"^\d+(\.\d+)?([eE][-+]?\d+)?$")
_TOKENS = re.compile(r"\s+|([()*/])|([^\s()*/]+)")


class ExpressionError(ValueError):
    """An expression that does not parse; the message names the token and what was expected."""


@dataclass(frozen=True, slots=True)
class Term:
    """One number of a run: `metric` (None: the claim's) at `generation` of `arm`, per seed."""

    arm: str
    generation: int
    metric: str | None = None  # "synthetic_perplexity.p99": a metric, then a path into its details

    def __str__(self) -> str:
        return f"{self.arm}.g{self.generation}" + (f":{self.metric}" if self.metric else "")


@dataclass(frozen=True, slots=True)
class Linear:
    """sum(coefficient * term) + constant."""

    terms: tuple[tuple[Term, float], ...]
    constant: float = 0.0

    def value(self, lookup: Callable[[Term], float]) -> float:
        """The expression's value with each term's number from `lookup(term)`."""
        return sum(c * lookup(t) for t, c in self.terms) + self.constant

    def _scaled(self, k: float) -> Linear:
        return Linear(tuple((t, c * k) for t, c in self.terms), self.constant * k)

    def _plus(self, other: Linear) -> Linear:
        merged: dict[Term, float] = dict(self.terms)
        for t, c in other.terms:
            merged[t] = merged.get(t, 0.0) + c
        return Linear(tuple((t, c) for t, c in merged.items() if c != 0.0), self.constant + other.constant)


def parse(text: str) -> Linear:
    """Parse an expression (see the module's docstring).

    Raises:
        ExpressionError: A token that is neither a number, a term nor an operator, a missing
            or extra parenthesis, a product of two terms, or a division by a term or by 0.
    """
    tokens = _tokenize(text)
    parser = _Parser(tokens, text)
    result = parser.expression()
    if parser.pos != len(tokens):
        raise ExpressionError(f"{text!r}: unexpected {tokens[parser.pos]!r}")
    if not result.terms:
        raise ExpressionError(f"{text!r}: no term (ARM.gN) in it")
    return result


def _tokenize(text: str) -> list[str]:
    out = [a or b for a, b in _TOKENS.findall(text) if a or b]
    if not out:
        raise ExpressionError("empty expression")
    return out


class _Parser:
    """expression := ['+'|'-'] product (('+'|'-') product)*
    product := factor (('*'|'/') factor)*
    factor := NUMBER | TERM | '(' expression ')' | '-' factor"""

    def __init__(self, tokens: list[str], text: str) -> None:
        self.tokens, self.text, self.pos = tokens, text, 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self, what: str) -> str:
        token = self._peek()
        if token is None:
            raise ExpressionError(f"{self.text!r}: ends where {what} was expected")
        self.pos += 1
        return token

    def expression(self) -> Linear:
        sign = -1.0 if self._peek() == "-" else 1.0
        if self._peek() in ("+", "-"):
            self.pos += 1
        out = self.product()._scaled(sign)
        while self._peek() in ("+", "-"):
            op = self._next("an operator")
            right = self.product()
            out = out._plus(right._scaled(-1.0 if op == "-" else 1.0))
        return out

    def product(self) -> Linear:
        out = self.factor()
        while self._peek() in ("*", "/"):
            op = self._next("an operator")
            right = self.factor()
            if op == "/":
                if right.terms or right.constant == 0:
                    raise ExpressionError(f"{self.text!r}: divide only by a number other than 0")
                out = out._scaled(1.0 / right.constant)
            elif out.terms and right.terms:
                raise ExpressionError(f"{self.text!r}: a product of two terms is not linear")
            else:
                out = out._scaled(right.constant) if not right.terms else right._scaled(out.constant)
        return out

    def factor(self) -> Linear:
        token = self._next("a number, a term ARM.gN or '('")
        if token == "(":
            inner = self.expression()
            if self._next("')'") != ")":
                raise ExpressionError(f"{self.text!r}: expected ')' before {self.tokens[self.pos - 1]!r}")
            return inner
        if token == "-":
            return self.factor()._scaled(-1.0)
        if _NUMBER.match(token):
            return Linear((), float(token))
        m = _TERM.match(token)
        if m is None:
            raise ExpressionError(f"{self.text!r}: {token!r} is not a number, a term ARM.gN[:METRIC] or an operator "
                                  "(write + and - with spaces around them)")
        return Linear(((Term(m["arm"], int(m["generation"]), m["metric"]), 1.0),))

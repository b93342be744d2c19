"""Expectations in Python: small builders that read like the rule they state.

>>> from plinth.data import expect
>>> suite = expect.suite(
...     "churn",
...     expect.not_null("customer_id"),
...     expect.unique("customer_id"),
...     expect.between("tenure", min=0, max=72),
...     expect.expression("monthly_charges >= 0"),
... )
>>> len(suite.expectations)
4
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from plinth.data.schemas import Expectation, ExpectationSuite

__all__ = [
    "between",
    "expression",
    "freshness",
    "in_set",
    "matches_regex",
    "not_null",
    "row_count_between",
    "suite",
    "unique",
]


def suite(name: str, *expectations: Expectation) -> ExpectationSuite:
    return ExpectationSuite(name=name, expectations=list(expectations))


def not_null(column: str, mostly: float = 1.0) -> Expectation:
    return Expectation(type="not_null", column=column, mostly=mostly)


def unique(*columns: str) -> Expectation:
    """Values (or combinations of values, for several columns) occur at most once."""
    if len(columns) == 1:
        return Expectation(type="unique", column=columns[0])
    return Expectation(type="unique", columns=list(columns))


def between(column: str, min: Any = None, max: Any = None, mostly: float = 1.0) -> Expectation:  # noqa: A002
    return Expectation(type="between", column=column, min=min, max=max, mostly=mostly)


def in_set(column: str, values: Iterable[Any], mostly: float = 1.0) -> Expectation:
    return Expectation(type="in_set", column=column, values=list(values), mostly=mostly)


def matches_regex(column: str, pattern: str, mostly: float = 1.0) -> Expectation:
    """Values contain a match of ``pattern`` (anchor it with ``^…$`` for a full match)."""
    return Expectation(type="matches_regex", column=column, pattern=pattern, mostly=mostly)


def row_count_between(min: int | None = None, max: int | None = None) -> Expectation:  # noqa: A002
    return Expectation(type="row_count_between", min=min, max=max)


def freshness(column: str, max_age: timedelta | float) -> Expectation:
    """The newest value of ``column`` is at most ``max_age`` old (seconds or a timedelta)."""
    seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    return Expectation(type="freshness", column=column, max_age_seconds=seconds)


def expression(sql: str, mostly: float = 1.0, name: str | None = None) -> Expectation:
    """A SQL boolean over a row, e.g. ``"amount >= 0 OR refunded"``; NULL counts as failing."""
    return Expectation(type="expression", expression=sql, mostly=mostly, name=name)

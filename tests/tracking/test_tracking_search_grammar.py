"""The filter language: what parses, what it compiles to, and errors that point at the token."""

from __future__ import annotations

import pytest

from plinth.core.errors import InvalidInput
from plinth.tracking.search import (
    BoolOp,
    Comparison,
    Not,
    compile_filter,
    parse_filter,
    parse_order_by,
)


def test_the_issue_example_parses_into_four_comparisons() -> None:
    node = parse_filter(
        "metrics.auc > 0.9 and params.model = 'rf' and tags.team = 'risk' and attributes.status = 'finished'"
    )
    assert isinstance(node, BoolOp) and node.op == "and"
    parts = [(c.field.entity, c.field.key, c.op, c.value.value) for c in node.parts]  # type: ignore[union-attr]
    assert parts == [
        ("metrics", "auc", ">", 0.9),
        ("params", "model", "=", "rf"),
        ("tags", "team", "=", "risk"),
        ("attributes", "status", "=", "finished"),
    ]


def test_or_binds_looser_than_and_and_parentheses_group() -> None:
    node = parse_filter("metrics.a = 1 or metrics.b = 2 and metrics.c = 3")
    assert isinstance(node, BoolOp) and node.op == "or"
    assert isinstance(node.parts[1], BoolOp) and node.parts[1].op == "and"
    node = parse_filter("(metrics.a = 1 or metrics.b = 2) and not metrics.c = 3")
    assert isinstance(node, BoolOp) and node.op == "and"
    assert isinstance(node.parts[0], BoolOp) and node.parts[0].op == "or"
    assert isinstance(node.parts[1], Not)


def test_operators_keywords_quoting_and_lists() -> None:
    for text, op in [
        ("metrics.x = 1", "="),
        ("metrics.x == 1", "="),
        ("metrics.x != 1", "!="),
        ("metrics.x <> 1", "!="),
        ("metrics.x < 1", "<"),
        ("metrics.x <= 1", "<="),
        ("metrics.x > 1", ">"),
        ("metrics.x >= 1", ">="),
        ("params.x LIKE 'a%'", "LIKE"),
        ("params.x ilike 'A%'", "ILIKE"),
        ("params.x IN ('a', 'b')", "IN"),
        ("params.x not in ('a')", "NOT IN"),
        ("tags.x NOT LIKE 'a%'", "NOT LIKE"),
    ]:
        node = parse_filter(text)
        assert isinstance(node, Comparison) and node.op == op, text
    node = parse_filter("metrics.`val loss` < -1.5e-3")
    assert isinstance(node, Comparison) and node.field.key == "val loss" and node.value.value == -0.0015
    node = parse_filter("params.\"model type\" = 'it''s'")
    assert isinstance(node, Comparison) and node.field.key == "model type" and node.value.value == "it's"
    node = parse_filter("metrics.system/cpu_percent > 50")
    assert isinstance(node, Comparison) and node.field.key == "system/cpu_percent"
    node = parse_filter("status = 'failed'")  # bare attribute names are allowed
    assert isinstance(node, Comparison) and node.field.entity == "attributes"
    assert parse_filter("  ") is None and parse_filter(None) is None


def test_compiled_sql_uses_bound_parameters_only() -> None:
    node = parse_filter("params.model = 'rf; DROP TABLE runs' and metrics.auc > 0.9")
    sql = str(compile_filter(node, sqlite=True))
    assert "DROP" not in sql and "0.9" not in sql
    assert ":value_1" in sql or ":param_1" in sql or "value_1" in sql
    like = str(compile_filter(parse_filter("params.m LIKE 'r%'"), sqlite=True))
    assert "GLOB" in like  # case-sensitive on SQLite as on PostgreSQL
    assert "LIKE" in str(compile_filter(parse_filter("params.m LIKE 'r%'"), sqlite=False))


@pytest.mark.parametrize(
    ("text", "position", "token", "says"),
    [
        ("metrics.auc >", 13, "", "expected a value"),
        ("metrics.auc > 'high'", 14, "'high'", "is a number"),
        ("params.model > 'a'", 13, ">", "is a string"),
        ("auc > 0.9", 0, "auc", "unknown field 'auc'"),
        ("metric.auc > 0.9 and", 20, "", "expected a field"),
        ("metrics.auc > 0.9 params.x = 'a'", 18, "params.x", "expected 'and', 'or'"),
        ("metrics.auc ~ 3", 12, "~", "unexpected character"),
        ("(metrics.a = 1", 14, "", "expected ')'"),
        ("params.a in ('x'", 16, "", "expected ',' or ')'"),
        ("bogus.a = 1", 0, "bogus.a", "unknown entity 'bogus'"),
        ("attributes.colour = 'red'", 0, "attributes.colour", "unknown attribute 'colour'"),
        ("metrics.a like 'x%'", 15, "'x%'", "LIKE does not apply"),
        ("params.a like 5", 14, "5", "quoted pattern"),
        ("metrics.a = 'unterminated", 12, "'", "unexpected character"),
        ("params.a = 1 and not", 20, "", "expected a field"),
    ],
)
def test_errors_name_the_position_and_token(text: str, position: int, token: str, says: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_filter(text)
    assert err.value.details["position"] == position, err.value.message
    assert err.value.details["token"] == token
    assert err.value.details["field"] == "filter"
    assert says in err.value.message
    assert err.value.message.startswith(f"invalid filter at position {position}")


def test_order_by_items_and_their_errors() -> None:
    items = parse_order_by(["metrics.auc desc", "params.model", "attributes.start_time ASC"])
    assert [(str(f), d) for f, d in items] == [
        ("metrics.auc", True),
        ("params.model", False),
        ("attributes.start_time", False),
    ]
    with pytest.raises(InvalidInput, match=r"invalid order_by at position 12 \(near 'sideways'\)"):
        parse_order_by(["metrics.auc sideways"])
    with pytest.raises(InvalidInput, match="unknown field"):
        parse_order_by(["auc"])

"""SQL boolean expressions of ``expression`` expectations, parsed and checked, never pasted.

DuckDB parses ``SELECT *, (<expression>) AS __check FROM __t`` into its syntax tree
(``json_serialize_sql``). The tree must be that one statement and nothing else, and the
expression may hold only column references to the table's own columns, constants,
comparisons, AND/OR/NOT, IS [NOT] NULL, IN lists, BETWEEN, CASE, casts and functions from
an allow-list: no subqueries, no parameters, no lambdas, no aggregates or window
functions, no table functions. The SQL that runs is DuckDB's own rendering of the checked
tree (``json_deserialize_sql``), not the user's text.
"""

from __future__ import annotations

import json
from typing import Any

from plinth.core.errors import InvalidInput

__all__ = ["ALLOWED_FUNCTIONS", "CHECK_COLUMN", "TABLE", "checked_select"]

TABLE = "__t"
CHECK_COLUMN = "__check"
ALLOWED_FUNCTIONS = frozenset(
    {
        # arithmetic and string operators as DuckDB names them
        "+",
        "-",
        "*",
        "/",
        "//",
        "%",
        "**",
        "^",
        "||",
        "~~",
        "!~~",
        "~~*",
        "!~~*",
        "like_escape",
        "ilike_escape",
        # numbers
        "abs",
        "round",
        "floor",
        "ceil",
        "ceiling",
        "sqrt",
        "ln",
        "log",
        "log10",
        "log2",
        "exp",
        "pow",
        "power",
        "sign",
        "least",
        "greatest",
        "isnan",
        "isinf",
        "isfinite",
        "trunc",
        # text
        "length",
        "strlen",
        "lower",
        "upper",
        "lcase",
        "ucase",
        "trim",
        "ltrim",
        "rtrim",
        "substr",
        "substring",
        "starts_with",
        "ends_with",
        "contains",
        "prefix",
        "suffix",
        "concat",
        "left",
        "right",
        "regexp_matches",
        "regexp_full_match",
        # dates and times
        "date_part",
        "datepart",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "dayofweek",
        "dayofyear",
        "week",
        "date_diff",
        "datediff",
        "date_trunc",
        "datetrunc",
        "epoch",
        "to_days",
        "to_hours",
        "to_minutes",
        "to_seconds",
    }
)
_OPERATORS = frozenset(
    {
        "OPERATOR_NOT",
        "OPERATOR_IS_NULL",
        "OPERATOR_IS_NOT_NULL",
        "COMPARE_IN",
        "COMPARE_NOT_IN",
        "OPERATOR_COALESCE",
        "OPERATOR_NULLIF",
    }
)
_CLASSES = frozenset(
    {
        "COLUMN_REF",
        "CONSTANT",
        "COMPARISON",
        "CONJUNCTION",
        "OPERATOR",
        "BETWEEN",
        "CAST",
        "CASE",
        "FUNCTION",
    }
)


def _refuse(expression: str, why: str) -> InvalidInput:
    return InvalidInput(f"expression {expression!r} is refused: {why}", field="expression")


def _walk(node: Any, expression: str, columns: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, expression, columns)
        return
    if not isinstance(node, dict):
        return
    cls = node.get("class")
    if cls is not None:
        if cls == "TYPE":
            return  # the target type of a CAST
        if cls not in _CLASSES:
            what = {
                "SUBQUERY": "subqueries",
                "PARAMETER": "parameters",
                "LAMBDA": "lambdas",
                "WINDOW": "window functions",
                "STAR": "'*'",
            }
            raise _refuse(
                expression, f"{what.get(cls, cls.lower() + ' expressions')} are not allowed"
            )
        if cls == "COLUMN_REF":
            names = node.get("column_names") or []
            if len(names) != 1:
                raise _refuse(expression, f"column {'.'.join(names)!r} must be a plain column name")
            if names[0] not in columns:
                raise _refuse(
                    expression,
                    f"{names[0]!r} is not a column of the dataset ({', '.join(sorted(columns))})",
                )
        elif cls == "OPERATOR" and node.get("type") not in _OPERATORS:
            raise _refuse(expression, f"operator {node.get('type')} is not allowed")
        elif cls == "FUNCTION":
            name = str(node.get("function_name", "")).lower()
            if node.get("schema") or node.get("catalog"):
                raise _refuse(expression, "qualified function names are not allowed")
            if name not in ALLOWED_FUNCTIONS:
                raise _refuse(expression, f"function {name!r} is not on the allow-list")
            if (
                node.get("filter") is not None
                or node.get("distinct")
                or (node.get("order_bys") or {}).get("orders")
            ):
                raise _refuse(expression, f"{name!r} is used as an aggregate")
    for key, value in node.items():
        if key != "class":
            _walk(value, expression, columns)


def checked_select(con: Any, expression: str, columns: list[str]) -> str:
    """``SELECT *, (<expression>) AS __check FROM __t`` as DuckDB renders the checked tree."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput(
            "an expression expectation needs a non-empty SQL boolean", field="expression"
        )
    if len(expression) > 4000:
        raise _refuse(expression[:40] + "…", "longer than 4000 characters")
    text = f"SELECT *, ({expression}) AS {CHECK_COLUMN} FROM {TABLE}"
    tree = json.loads(con.execute("SELECT json_serialize_sql(?)", [text]).fetchall()[0][0])
    if tree.get("error"):
        raise _refuse(
            expression, str(tree.get("error_message") or "it does not parse as one SQL expression")
        )
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise _refuse(expression, "it must be a single expression, not statements")
    node = statements[0].get("node", {})
    select_list = node.get("select_list") or []
    source = node.get("from_table") or {}
    shape_ok = (
        node.get("type") == "SELECT_NODE"
        and len(select_list) == 2
        and select_list[0].get("class") == "STAR"
        and not select_list[0].get("exclude_list")
        and not select_list[0].get("replace_list")
        and select_list[1].get("alias") == CHECK_COLUMN
        and source.get("type") == "BASE_TABLE"
        and source.get("table_name") == TABLE
        and not source.get("schema_name")
        and not source.get("catalog_name")
        and source.get("sample") is None
        and source.get("at_clause") is None
        and node.get("where_clause") is None
        and not node.get("group_expressions")
        and not node.get("group_sets")
        and node.get("having") is None
        and node.get("qualify") is None
        and node.get("sample") is None
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
    )
    if not shape_ok:
        raise _refuse(expression, "it must be a single expression over the dataset's columns")
    _walk(select_list[1], expression, set(columns))
    rendered = con.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchall()[0][0]
    return str(rendered)

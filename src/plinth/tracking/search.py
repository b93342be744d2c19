"""The run filter language: a tokenizer, a recursive-descent parser, and a compiler to SQL.

Grammar (keywords are case-insensitive)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := unary ("and" unary)*
    unary      := "not" unary | "(" or_expr ")" | comparison
    comparison := field op literal | field ["not"] "in" "(" literal ("," literal)* ")"
                | field ["not"] ("like" | "ilike") string
    field      := entity "." key            entity: metrics params tags attributes
    key        := name | `quoted` | "quoted"
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal    := number | 'string' | "string"

    order_by   := field ["asc" | "desc"]

A filter compiles to SQLAlchemy expressions with bound parameters only: no SQL is built
from the text and nothing is evaluated. Metric comparisons read the ``latest_metrics``
table (a primary-key lookup per run), never the metric history. Errors name the
position and the token where the text went wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, not_, or_, select
from sqlalchemy.orm import aliased

from plinth.core.errors import InvalidInput
from plinth.tracking.tables import LatestMetric, Run, RunParam, RunTag

__all__ = [
    "Binder",
    "Comparison",
    "FieldRef",
    "compile_filter",
    "compile_order_by",
    "filter_shape",
    "bind_driver_values",
    "bind_filter_values",
    "driver_query",
    "index_drivers",
    "parse_filter",
    "parse_order_by",
]

MAX_FILTER_LENGTH = 10_000

ENTITIES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
ATTRIBUTES: dict[str, str] = {
    "status": "status",
    "name": "name",
    "run_name": "name",
    "id": "id",
    "run_id": "id",
    "experiment_id": "experiment_id",
    "parent_id": "parent_id",
    "created_by": "created_by",
    "user": "created_by",
    "start_time": "start_time",
    "end_time": "end_time",
}
_TIME_ATTRIBUTES = {"start_time", "end_time"}
_KEYWORDS = {"and", "or", "not", "like", "ilike", "in", "asc", "desc"}
_ORDER_OPS = {"<", "<=", ">", ">="}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<ident>[A-Za-z_][\w.\-/:]*)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # ident, keyword, string, quoted, number, op, punct, end
    text: str
    pos: int

    @property
    def lower(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class FieldRef:
    entity: str  # metrics | params | tags | attributes
    key: str
    pos: int

    def __str__(self) -> str:
        return f"{self.entity}.{self.key}"


@dataclass(frozen=True)
class Literal:
    value: str | float | int
    kind: str  # string | number
    text: str
    pos: int


@dataclass(frozen=True)
class Comparison:
    field: FieldRef
    op: str  # = != < <= > >= LIKE ILIKE IN, each optionally prefixed by NOT
    value: Literal | tuple[Literal, ...]
    pos: int
    op_pos: int = 0


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    part: Node


Node = Comparison | BoolOp | Not


class _Syntax:
    """Parser state over one text: the tokens and where we are."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.tokens = _tokenize(text, what)
        self.i = 0

    def error(self, token: Token, message: str) -> InvalidInput:
        near = "the end" if token.kind == "end" else repr(token.text)
        return InvalidInput(
            f"invalid {self.what} at position {token.pos} (near {near}): {message}",
            field=self.what,
            position=token.pos,
            token=token.text,
        )

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "end":
            self.i += 1
        return tok

    def accept_keyword(self, *words: str) -> Token | None:
        tok = self.peek
        if tok.kind == "keyword" and tok.lower in words:
            return self.next()
        return None

    def expect_punct(self, char: str, message: str) -> Token:
        tok = self.next()
        if tok.kind != "punct" or tok.text != char:
            raise self.error(tok, message)
        return tok


def _tokenize(text: str, what: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise InvalidInput(
                f"invalid {what} at position {pos} (near {text[pos : pos + 10]!r}): unexpected character {text[pos]!r}",
                field=what,
                position=pos,
                token=text[pos],
            )
        kind = m.lastgroup
        assert kind is not None
        if kind != "ws":
            word = m.group()
            if kind == "ident" and word.lower() in _KEYWORDS:
                kind = "keyword"
            tokens.append(Token(kind, word, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _unquote(text: str) -> str:
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body.replace("``", "`")
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", r"\1", body)


def _field(syn: _Syntax) -> FieldRef:
    tok = syn.next()
    if tok.kind != "ident":
        raise syn.error(tok, "expected a field such as metrics.auc, params.model, tags.team or attributes.status")
    head, dot, rest = tok.text.partition(".")
    entity = ENTITIES.get(head.lower())
    if not dot:
        if head.lower() in ATTRIBUTES:
            return FieldRef("attributes", ATTRIBUTES[head.lower()], tok.pos)
        raise syn.error(
            tok,
            f"unknown field {tok.text!r}: prefix it with metrics., params., tags. or attributes.",
        )
    if entity is None:
        raise syn.error(tok, f"unknown entity {head!r}: use metrics, params, tags or attributes")
    key = rest
    if not key:  # metrics.`val loss` or metrics."val loss"
        quoted = syn.peek
        if quoted.kind not in {"quoted", "string"} or quoted.pos != tok.pos + len(tok.text):
            raise syn.error(quoted, f"expected a key after {tok.text!r}")
        key = _unquote(syn.next().text)
        if not key:
            raise syn.error(quoted, "the key is empty")
    if entity == "attributes":
        name = ATTRIBUTES.get(key.lower())
        if name is None:
            raise syn.error(tok, f"unknown attribute {key!r}: use one of {', '.join(sorted(set(ATTRIBUTES)))}")
        key = name
    return FieldRef(entity, key, tok.pos)


def _literal(syn: _Syntax) -> Literal:
    tok = syn.next()
    if tok.kind == "string":
        return Literal(_unquote(tok.text), "string", tok.text, tok.pos)
    if tok.kind == "number":
        value: int | float = int(tok.text) if re.fullmatch(r"[-+]?\d+", tok.text) else float(tok.text)
        return Literal(value, "number", tok.text, tok.pos)
    raise syn.error(tok, "expected a value: a number or a quoted string such as 'rf'")


def _comparison(syn: _Syntax) -> Comparison:
    field = _field(syn)
    start = syn.peek
    negated = syn.accept_keyword("not") is not None
    tok = syn.next()
    if tok.kind == "keyword" and tok.lower in {"like", "ilike"}:
        op = tok.lower.upper()
        value: Literal | tuple[Literal, ...] = _literal(syn)
        if value.kind != "string":
            raise syn.error(_tok_at(syn, value.pos), f"{op} needs a quoted pattern such as 'rf%'")
    elif tok.kind == "keyword" and tok.lower == "in":
        op = "IN"
        syn.expect_punct("(", "expected '(' to open the list after IN")
        items = [_literal(syn)]
        while syn.peek.kind == "punct" and syn.peek.text == ",":
            syn.next()
            items.append(_literal(syn))
        syn.expect_punct(")", "expected ',' or ')' in the IN list")
        value = tuple(items)
    elif tok.kind == "op" and not negated:
        op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        value = _literal(syn)
    else:
        expected = "LIKE, ILIKE or IN" if negated else "a comparison (=, !=, <, <=, >, >=, LIKE, ILIKE, IN)"
        raise syn.error(tok, f"expected {expected} after {field}")
    if negated:
        op = "NOT " + op
    comparison = Comparison(field, op, value, start.pos, tok.pos)
    _check_types(syn, comparison)
    return comparison


def _tok_at(syn: _Syntax, pos: int) -> Token:
    return next(t for t in syn.tokens if t.pos == pos)


def _check_types(syn: _Syntax, c: Comparison) -> None:
    values = c.value if isinstance(c.value, tuple) else (c.value,)
    entity, key = c.field.entity, c.field.key
    base_op = c.op.removeprefix("NOT ")
    if entity == "metrics":
        if base_op in {"LIKE", "ILIKE"}:
            raise syn.error(_tok_at(syn, values[0].pos), f"metrics are numbers: {base_op} does not apply to {c.field}")
        for v in values:
            if v.kind != "number":
                raise syn.error(_tok_at(syn, v.pos), f"{c.field} is a number; compare it with a number, not {v.text}")
    elif entity in {"params", "tags"} or key not in _TIME_ATTRIBUTES:
        if base_op in _ORDER_OPS:
            raise syn.error(
                _tok_at(syn, c.op_pos), f"{c.field} is a string: use =, !=, LIKE, ILIKE or IN (compared as text)"
            )
    elif base_op in {"LIKE", "ILIKE"}:
        raise syn.error(
            _tok_at(syn, c.op_pos), f"{c.field} is a time: compare it with =, <, >, … and a number or ISO date"
        )


def _unary(syn: _Syntax) -> Node:
    if syn.accept_keyword("not"):
        return Not(_unary(syn))
    tok = syn.peek
    if tok.kind == "punct" and tok.text == "(":
        syn.next()
        node = _or(syn)
        syn.expect_punct(")", "expected ')' to close the '(' or 'and'/'or' to go on")
        return node
    return _comparison(syn)


def _and(syn: _Syntax) -> Node:
    parts = [_unary(syn)]
    while syn.accept_keyword("and"):
        parts.append(_unary(syn))
    return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))


def _or(syn: _Syntax) -> Node:
    parts = [_and(syn)]
    while syn.accept_keyword("or"):
        parts.append(_and(syn))
    return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))


# Parsed texts, kept per process: the nodes are frozen, and the same search is often run again.
_PARSED_MAX = 256
_parsed: dict[tuple[str, str], Any] = {}


def _remember(kind: str, text: str, value: Any) -> Any:
    if len(_parsed) >= _PARSED_MAX:
        _parsed.clear()
    _parsed[kind, text] = value
    return value


def parse_filter(text: str | None) -> Node | None:
    """Parse a filter string; ``None`` or blank means no filter."""
    if text is None:
        return None
    if not isinstance(text, str) or len(text) > MAX_FILTER_LENGTH:
        raise InvalidInput(f"filter must be a string of at most {MAX_FILTER_LENGTH} characters", field="filter")
    known = _parsed.get(("filter", text))
    if known is not None:
        return known  # type: ignore[no-any-return]
    if not text.strip():
        return None
    syn = _Syntax(text, "filter")
    node = _or(syn)
    if syn.peek.kind != "end":
        raise syn.error(syn.peek, "expected 'and', 'or' or the end of the filter")
    return _remember("filter", text, node)  # type: ignore[no-any-return]


def parse_order_by(items: list[str] | None) -> list[tuple[FieldRef, bool]]:
    """Parse ``["metrics.auc desc", "params.model"]`` into (field, descending) pairs."""
    out: list[tuple[FieldRef, bool]] = []
    for item in items or []:
        if not isinstance(item, str):
            raise InvalidInput("order_by items must be strings such as 'metrics.auc desc'", field="order_by")
        known = _parsed.get(("order_by", item))
        if known is None:
            syn = _Syntax(item, "order_by")
            field = _field(syn)
            direction = syn.accept_keyword("asc", "desc")
            if syn.peek.kind != "end":
                raise syn.error(syn.peek, "expected 'asc', 'desc' or the end of the item")
            known = _remember("order_by", item, (field, direction is not None and direction.lower == "desc"))
        out.append(known)
    return out


# --- compilation ------------------------------------------------------------------------
def _like_to_glob(pattern: str) -> str:
    """SQLite's LIKE ignores case; GLOB does not. Translate a LIKE pattern to GLOB."""
    out = []
    for ch in pattern:
        if ch in "*?[":
            out.append(f"[{ch}]")
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(ch)
    return "".join(out)


def _time_value(lit: Literal) -> datetime:
    if lit.kind == "number":
        return datetime.fromtimestamp(float(lit.value) / 1000, UTC)
    try:
        moment = datetime.fromisoformat(str(lit.value))
    except ValueError:
        raise InvalidInput(
            f"invalid filter at position {lit.pos} (near {lit.text!r}): expected milliseconds since the epoch "
            "or an ISO date such as '2026-01-31T12:00:00Z'",
            field="filter",
            position=lit.pos,
            token=lit.text,
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(field: FieldRef, lit: Literal) -> Any:
    if field.entity == "metrics":
        return float(lit.value)
    if field.entity == "attributes" and field.key in _TIME_ATTRIBUTES:
        return _time_value(lit)
    return lit.text if lit.kind == "number" else lit.value


def _condition(column: Any, op: str, value: Any, sqlite: bool) -> ColumnElement[bool]:
    negated = op.startswith("NOT ")
    base = op.removeprefix("NOT ")
    expr: ColumnElement[bool]
    if base == "=":
        expr = column == value
    elif base == "!=":
        expr = column != value
    elif base == "<":
        expr = column < value
    elif base == "<=":
        expr = column <= value
    elif base == ">":
        expr = column > value
    elif base == ">=":
        expr = column >= value
    elif base == "LIKE":
        expr = (
            column.op("GLOB", is_comparison=True)(value) if sqlite else column.like(value)
        )  # value: already a GLOB pattern
    elif base == "ILIKE":
        expr = column.ilike(value)
    elif base == "IN":
        expr = column.in_(value)
    else:  # pragma: no cover - the parser produces no other operator
        raise ValueError(op)
    return not_(expr) if negated else expr


class Binder:
    """Values of a statement as named bound parameters (``v0``, ``v1``, … in the order bound).

    A statement built with a binder depends only on the filter's shape (its fields'
    entities, attributes and operators), not on its values or keys, so it can be built
    once per shape and run again with another filter's ``values``.
    """

    def __init__(self, prefix: str = "v", build: bool = True) -> None:
        self.prefix = prefix
        self.build = build  # False: collect the values only (see ``bind_filter_values``)
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any, expanding: bool = False) -> Any:
        name = f"{self.prefix}{len(self.values)}"
        self.values[name] = value
        return bindparam(name, expanding=expanding) if self.build else None


def bind_filter_values(node: Node | None, *, sqlite: bool, bind: Binder) -> None:
    """Bind what ``compile_filter(node, bind=...)`` binds, in the same order, building no SQL."""
    if node is None:
        return
    if isinstance(node, BoolOp | Not):
        for part in node.parts if isinstance(node, BoolOp) else (node.part,):
            bind_filter_values(part, sqlite=sqlite, bind=bind)
        return
    if node.field.entity != "attributes":
        bind(node.field.key)
    bind(_comparison_value(node, sqlite), isinstance(node.value, tuple))


def _plain(value: Any, expanding: bool = False) -> Any:
    return value


def filter_shape(node: Node | None, *, sqlite: bool) -> tuple[Any, ...]:
    """What a statement built by ``compile_filter(node, bind=Binder())`` depends on."""
    if node is None:
        return ()
    if isinstance(node, BoolOp):
        return (node.op, *(filter_shape(p, sqlite=sqlite) for p in node.parts))
    if isinstance(node, Not):
        return ("not", filter_shape(node.part, sqlite=sqlite))
    key = node.field.key if node.field.entity == "attributes" else None
    return (node.field.entity, key, node.op, sqlite)


def _comparison_value(c: Comparison, sqlite: bool) -> Any:
    if isinstance(c.value, tuple):
        return [_value(c.field, v) for v in c.value]
    value = _value(c.field, c.value)
    return _like_to_glob(value) if sqlite and c.op.removeprefix("NOT ") == "LIKE" else value


def _comparison_sql(column: Any, c: Comparison, sqlite: bool, bind: Any) -> ColumnElement[bool]:
    return _condition(column, c.op, bind(_comparison_value(c, sqlite), isinstance(c.value, tuple)), sqlite)


def compile_filter(
    node: Node | None, *, sqlite: bool, bind: Any = None, driver: Comparison | None = None
) -> ColumnElement[bool] | None:
    """The filter as a SQLAlchemy condition on ``Run`` (bound parameters only).

    With ``bind`` (a :class:`Binder`) keys and values become named parameters it collects.
    ``driver`` (one of ``index_drivers(node)``) becomes ``Run.id IN (its index range)``, the
    same condition as its ``EXISTS`` probe, which a planner can start from.
    """
    bind = bind or _plain
    if node is None:
        return None
    if isinstance(node, BoolOp):
        parts = [compile_filter(p, sqlite=sqlite, bind=bind, driver=driver) for p in node.parts]
        return and_(*parts) if node.op == "and" else or_(*parts)
    if isinstance(node, Not):
        inner = compile_filter(node.part, sqlite=sqlite, bind=bind, driver=driver)
        assert inner is not None
        return not_(inner)
    if node is driver:
        return Run.id.in_(driver_query(node, sqlite=sqlite, bind=bind))
    field = node.field
    if field.entity == "attributes":
        return _comparison_sql(getattr(Run, field.key), node, sqlite, bind)
    table: Any = {"metrics": LatestMetric, "params": RunParam, "tags": RunTag}[field.entity]
    # EXISTS, probed per run by primary key: a first page in the default order walks the runs
    # index and stops after max_results matches instead of materialising every match.
    return (
        select(table.run_id)
        .where(table.run_id == Run.id, table.key == bind(field.key), _comparison_sql(table.value, node, sqlite, bind))
        .correlate(Run)
        .exists()
    )


_RANGE_OPS = {"=", "<", "<=", ">", ">=", "IN"}


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, BoolOp) and node.op == "and":
        return [c for part in node.parts for c in _conjuncts(part)]
    return [node]


def index_drivers(node: Node | None) -> list[Comparison]:
    """Metric comparisons every match must pass that an index range answers.

    Each is a top-level ``and`` term on a metric with =, <, <=, >, >= or IN: a range of the
    ``latest_metrics (key, value, run_id)`` index (see ``driver_query``). Its ``EXISTS``
    probe and ``Run.id IN (range)`` are the same condition, so compiling it as the latter
    (``compile_filter(driver=...)``) never changes the result; it lets a very selective
    filter start from the index instead of walking every run in scope.
    """
    if node is None:
        return []
    return [
        part
        for part in _conjuncts(node)
        if isinstance(part, Comparison) and part.field.entity == "metrics" and part.op in _RANGE_OPS
    ]


def driver_query(c: Comparison, *, sqlite: bool, bind: Any = None) -> Any:
    """The ids of the runs whose latest ``c.field`` passes ``c``: one range of the index."""
    bind = bind or _plain
    return select(LatestMetric.run_id).where(
        LatestMetric.key == bind(c.field.key), _comparison_sql(LatestMetric.value, c, sqlite, bind)
    )


def bind_driver_values(c: Comparison, *, sqlite: bool, bind: Binder) -> None:
    """Bind what ``driver_query(c, bind=...)`` binds, in the same order, building no SQL."""
    bind(c.field.key)
    bind(_comparison_value(c, sqlite), isinstance(c.value, tuple))


def compile_order_by(items: list[tuple[FieldRef, bool]], bind: Any = None) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """Outer joins to add and ORDER BY expressions; missing values (and NaN) sort last."""
    bind = bind or _plain
    joins: list[tuple[Any, Any]] = []
    order: list[Any] = []
    for field, descending in items:
        if field.entity == "attributes":
            column: Any = getattr(Run, field.key)
        else:
            table: Any = {"metrics": LatestMetric, "params": RunParam, "tags": RunTag}[field.entity]
            alias = aliased(table)
            joins.append((alias, and_(alias.run_id == Run.id, alias.key == bind(field.key))))
            column = alias.value
        order.append(column.is_(None))
        order.append(column.desc() if descending else column.asc())
    return joins, order

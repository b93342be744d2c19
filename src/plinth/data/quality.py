"""Data quality: expectation suites evaluated by DuckDB.

Row-level and table-level expectations share one aggregate query (one pass over the
data); ``expression`` expectations run as their own checked query
(:mod:`plinth.data.expression`). For each failed expectation a few failing rows are
sampled. Values from a suite (bounds, sets, patterns) go in as query parameters.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from plinth.core.errors import InvalidInput
from plinth.data.delta import LogFacts
from plinth.data.expression import CHECK_COLUMN, TABLE, checked_select
from plinth.data.profiling import quote
from plinth.data.schemas import Expectation, ExpectationResult, ExpectationSuite

__all__ = ["as_suite", "check_suite", "evaluate", "suite_from_yaml"]

SAMPLE_ROWS = 5
UNIQUE_COUNTING_SPAN = 1 << 24  # integer columns of at most this range: counted in an array
_INTEGERS = {"byte", "short", "integer", "long"}
_NEEDS_COLUMN = {"not_null", "between", "in_set", "matches_regex", "freshness"}


def as_suite(value: Any) -> ExpectationSuite:
    """A suite from a suite, a list of expectations/dicts, a dict, or YAML text or path."""
    if isinstance(value, ExpectationSuite):
        return value
    try:
        if isinstance(value, str | Path):
            return suite_from_yaml(str(value))
        if isinstance(value, Expectation):
            return ExpectationSuite(expectations=[value])
        if isinstance(value, list | tuple):
            return ExpectationSuite(expectations=[_expectation(e) for e in value])
        if isinstance(value, dict):
            return ExpectationSuite(
                name=value.get("name", "default"),
                expectations=[_expectation(e) for e in value.get("expectations", [])],
            )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidInput(
            f"expectation suite: {where}: {first['msg']}", field="expectations"
        ) from None
    raise InvalidInput(
        "expectations must be a suite, a list of expectations, a dict or YAML, not "
        f"{type(value).__name__}",
        field="expectations",
    )


def _expectation(value: Any) -> Expectation:
    if isinstance(value, Expectation):
        return value
    if not isinstance(value, dict):
        raise InvalidInput(f"an expectation must be a mapping, got {value!r}", field="expectations")
    if "type" in value:
        return Expectation.model_validate(value)
    if len(value) == 1:  # YAML shorthand: {not_null: col} or {between: {column: x, min: 0}}
        ((kind, body),) = value.items()
        if isinstance(body, dict):
            return Expectation.model_validate({"type": kind, **body})
        key = "expression" if kind == "expression" else "column"
        return Expectation.model_validate({"type": kind, key: body})
    raise InvalidInput(f"expectation {value!r} has no 'type'", field="expectations")


def suite_from_yaml(text_or_path: str) -> ExpectationSuite:
    """Read a suite from YAML text or a ``.yml``/``.yaml`` file::

    name: churn
    expectations:
      - not_null: customer_id
      - between: {column: tenure, min: 0, max: 72}
      - expression: "monthly_charges >= 0"
    """
    import yaml

    text = text_or_path
    if text_or_path.endswith((".yml", ".yaml")) and "\n" not in text_or_path:
        path = Path(text_or_path)
        if not path.is_file():
            raise InvalidInput(
                f"expectation suite file {path} does not exist", field="expectations"
            )
        text = path.read_text()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(
            f"expectation suite is not valid YAML: {exc}", field="expectations"
        ) from None
    if isinstance(data, list):
        data = {"expectations": data}
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise InvalidInput(
            "expectation suite YAML needs an 'expectations' list", field="expectations"
        )
    return as_suite(data)


def check_suite(suite: ExpectationSuite, columns: dict[str, str]) -> None:
    """Refuse a suite that cannot run on these columns, before any data is touched."""
    for e in suite.expectations:
        where = f"expectation {e.label}"
        if e.type in _NEEDS_COLUMN and not e.column:
            raise InvalidInput(f"{where}: needs a column", field="expectations")
        named = [e.column] if e.column else []
        named += e.columns or []
        if e.type == "unique" and not named:
            raise InvalidInput(f"{where}: needs a column or columns", field="expectations")
        for c in named:
            if c not in columns:
                raise InvalidInput(
                    f"{where}: column {c!r} is not in the dataset ({', '.join(columns)})",
                    field="expectations",
                )
        if e.type in {"between", "row_count_between"} and e.min is None and e.max is None:
            raise InvalidInput(f"{where}: needs min, max or both", field="expectations")
        if e.type == "in_set" and not e.values:
            raise InvalidInput(f"{where}: needs a non-empty 'values' list", field="expectations")
        if e.type == "matches_regex":
            if not e.pattern:
                raise InvalidInput(f"{where}: needs a 'pattern'", field="expectations")
            try:
                re.compile(e.pattern)
            except re.error as exc:
                raise InvalidInput(
                    f"{where}: pattern {e.pattern!r} is not a regular expression: {exc}",
                    field="expectations",
                ) from None
        if e.type == "freshness":
            if e.max_age_seconds is None:
                raise InvalidInput(f"{where}: needs max_age_seconds", field="expectations")
            if columns[e.column or ""] not in {"timestamp", "timestamp_ntz", "date"}:
                raise InvalidInput(
                    f"{where}: column {e.column!r} is not a date or timestamp", field="expectations"
                )
        if e.type == "expression" and not e.expression:
            raise InvalidInput(f"{where}: needs an 'expression'", field="expectations")


def _failing_condition(e: Expectation, params: list[Any]) -> str | None:
    """SQL that is true for a failing row (None for table-level expectations)."""
    q = quote(e.column) if e.column else ""
    if e.type == "not_null":
        return f"{q} IS NULL"
    if e.type == "between":
        bounds = []
        if e.min is not None:
            bounds.append(f"{q} >= ?")
            params.append(e.min)
        if e.max is not None:
            bounds.append(f"{q} <= ?")
            params.append(e.max)
        return f"{q} IS NOT NULL AND NOT ({' AND '.join(bounds)})"
    if e.type == "in_set":
        params.extend(e.values or [])
        return f"{q} IS NOT NULL AND NOT ({q} IN ({', '.join('?' for _ in e.values or [])}))"
    if e.type == "matches_regex":
        params.append(e.pattern)
        return f"{q} IS NOT NULL AND NOT regexp_matches(CAST({q} AS VARCHAR), ?)"
    return None


def _unique_key(e: Expectation) -> str:
    cols = ([e.column] if e.column else []) + (e.columns or [])
    if len(cols) == 1:
        return quote(cols[0])
    return "(" + ", ".join(quote(c) for c in cols) + ")"


def _jsonable_rows(table: Any) -> list[dict[str, Any]]:
    out = []
    for row in table.to_pylist():
        clean = {}
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v):
                v = str(v)
            clean[k] = to_jsonable_python(v, fallback=str)
        out.append(clean)
    return out


def _decided_by_log(
    e: Expectation, columns: dict[str, str], facts: LogFacts | None
) -> tuple[int, int | None] | None:
    """(failing rows, denominator) of a row check that the Delta log's exact statistics
    decide without reading the rows, else None: ``not_null`` from the null counts,
    ``between`` on an integer column whose every value lies inside the bounds."""
    if facts is None or not e.column or e.column not in facts.nulls:
        return None
    nulls = facts.nulls[e.column]
    if e.type == "not_null":
        return nulls, None
    if e.type != "between" or columns.get(e.column) not in _INTEGERS:
        return None
    bounds = facts.int_bounds.get(e.column)
    limits = [v for v in (e.min, e.max) if v is not None]
    if bounds is None or any(isinstance(v, bool) or not isinstance(v, int | float) for v in limits):
        return None
    low, high = bounds
    if (e.min is None or low >= e.min) and (e.max is None or high <= e.max):
        return 0, facts.rows - nulls
    return None


def _unique_by_counting(
    con: Any, e: Expectation, columns: dict[str, str], facts: LogFacts | None
) -> tuple[int, int] | None:
    """(duplicates, non-null values) of ``unique`` on one integer column whose range (from
    the Delta log) is small: each value's occurrences counted in an array indexed by value,
    instead of a hash table. None where that does not apply."""
    import numpy as np

    name = e.column
    if facts is None or not name or e.columns or columns.get(name) not in _INTEGERS:
        return None
    bounds = facts.int_bounds.get(name)
    if bounds is None:
        return None
    span = bounds[1] - bounds[0] + 1
    if span > UNIQUE_COUNTING_SPAN or span > 4 * facts.rows + 1024:
        return None
    q = quote(name)
    values = con.sql(f"SELECT {q} FROM {TABLE} WHERE {q} IS NOT NULL").to_arrow_table()
    offsets = values.column(0).to_numpy().astype(np.int64, copy=False) - bounds[0]
    if len(offsets) and (offsets.min() < 0 or offsets.max() >= span):
        return None  # the statistics do not cover the values: count in SQL
    present = np.count_nonzero(np.bincount(offsets, minlength=span))
    return int(len(offsets) - present), len(offsets)


def evaluate(
    con: Any,
    columns: dict[str, str],
    suite: ExpectationSuite,
    now: datetime,
    facts: LogFacts | None = None,
) -> list[ExpectationResult]:
    """Run ``suite`` over relation ``__t`` on ``con``; one result per expectation.

    ``facts`` (the Delta log's statistics of the version that ``__t`` is, exactly) lets
    checks that they decide skip the scan, and ``unique`` on a small-range integer column
    count with an array; the results are the same as the scan's."""
    check_suite(suite, columns)
    selects = ["count(*)"]
    params: list[Any] = []
    plan: list[tuple[Expectation, str | None, int]] = []
    for e in suite.expectations:
        cond = None
        decided = _decided_by_log(e, columns, facts)
        counted = _unique_by_counting(con, e, columns, facts) if e.type == "unique" else None
        if decided is not None or counted is not None:
            failing, denominator = decided or counted  # type: ignore[misc]
            selects += [str(int(failing)), "NULL" if denominator is None else str(denominator)]
        elif e.type in {"not_null", "between", "in_set", "matches_regex"}:
            cond_params: list[Any] = []
            cond = _failing_condition(e, cond_params)
            selects.append(f"count(*) FILTER (WHERE {cond})")
            params.extend(cond_params)
            selects.append(f"count({quote(e.column or '')})")
        elif e.type == "unique":
            key = _unique_key(e)
            nonnull = " AND ".join(
                f"{quote(c)} IS NOT NULL"
                for c in ([e.column] if e.column else []) + (e.columns or [])
            )
            selects.append(
                f"count(*) FILTER (WHERE {nonnull}) - count(DISTINCT {key}) FILTER (WHERE "
                f"{nonnull})"
            )
            selects.append(f"count(*) FILTER (WHERE {nonnull})")
        elif e.type == "freshness":
            selects.append(f"max({quote(e.column or '')})")
            selects.append("NULL")
        else:  # row_count_between and expression use count(*) / their own query
            selects.append("NULL")
            selects.append("NULL")
        plan.append((e, cond, len(selects) - 2))
    try:
        row = con.execute(f"SELECT {', '.join(selects)} FROM {TABLE}", params).fetchall()[0]
    except Exception as exc:
        raise InvalidInput(
            f"the expectation suite cannot run on this data: {str(exc).splitlines()[0]}",
            field="expectations",
        ) from None
    total = int(row[0])
    results = []
    for e, cond, i in plan:
        failing, denominator = row[i], row[i + 1]
        result = ExpectationResult(expectation=e, label=e.label, success=True)
        if e.type in {"not_null", "between", "in_set", "matches_regex", "unique"}:
            denominator = total if e.type == "not_null" else int(denominator or 0)
            _rate(result, int(failing or 0), denominator, e.mostly)
            if e.type == "between":
                result.observed = {"failing": result.failing_rows}
            elif e.type == "unique":
                result.observed = {"duplicates": result.failing_rows}
            else:
                result.observed = {"failing": result.failing_rows, "of": denominator}
            if not result.success:
                result.sample = _sample(con, e, cond)
        elif e.type == "row_count_between":
            result.observed = total
            result.success = (e.min is None or total >= e.min) and (e.max is None or total <= e.max)
            if not result.success:
                result.message = f"{total} rows, expected between {e.min} and {e.max}"
        elif e.type == "freshness":
            _freshness(result, failing, now, e.max_age_seconds or 0)
        elif e.type == "expression":
            _expression(con, result, e, list(columns), total)
        results.append(result)
    return results


def _rate(result: ExpectationResult, failing: int, denominator: int, mostly: float) -> None:
    share = failing / denominator if denominator else 0.0
    result.failing_rows = failing
    result.failing_share = share
    result.success = share <= (1.0 - mostly) + 1e-12
    if not result.success:
        result.message = f"{failing} of {denominator} rows fail ({share:.2%})"


def _sample(con: Any, e: Expectation, cond: str | None) -> list[dict[str, Any]]:
    params: list[Any] = []
    if e.type == "unique":
        key = _unique_key(e)
        cols = ([e.column] if e.column else []) + (e.columns or [])
        names = ", ".join(quote(c) for c in cols)
        nonnull = " AND ".join(f"{quote(c)} IS NOT NULL" for c in cols)
        sql = (
            f"SELECT {names}, count(*) AS occurrences FROM {TABLE} WHERE {nonnull} "
            f"GROUP BY {key if len(cols) == 1 else names} HAVING count(*) > 1 ORDER BY "
            f"occurrences DESC LIMIT {SAMPLE_ROWS}"
        )
    else:
        cond = _failing_condition(e, params)
        sql = f"SELECT * FROM {TABLE} WHERE {cond} LIMIT {SAMPLE_ROWS}"
    return _jsonable_rows(con.sql(sql, params=params or None).to_arrow_table())


def _freshness(result: ExpectationResult, newest: Any, now: datetime, max_age: float) -> None:
    if newest is None:
        result.success = False
        result.message = "no timestamps: the column is empty"
        return
    if isinstance(newest, datetime):
        stamp = newest if newest.tzinfo else newest.replace(tzinfo=UTC)
    elif isinstance(newest, date):
        stamp = datetime(newest.year, newest.month, newest.day, tzinfo=UTC) + timedelta(days=1)
    else:
        result.success = False
        result.message = f"newest value {newest!r} is not a time"
        return
    age = (now - stamp).total_seconds()
    result.observed = {"newest": stamp.isoformat(), "age_seconds": round(age, 3)}
    result.success = age <= max_age
    if not result.success:
        result.message = f"newest value is {age:.0f} s old, more than {max_age:.0f} s"


def _expression(
    con: Any, result: ExpectationResult, e: Expectation, columns: list[str], total: int
) -> None:
    select = checked_select(con, e.expression or "", columns)
    try:
        failing = con.execute(
            f"SELECT count(*) FILTER (WHERE NOT coalesce({CHECK_COLUMN}, false)) FROM ({select})"
        ).fetchall()[0][0]
    except Exception as exc:
        raise InvalidInput(
            f"expression {e.expression!r} cannot run on this data: {str(exc).splitlines()[0]}",
            field="expression",
        ) from None
    _rate(result, int(failing), total, e.mostly)
    result.observed = {"failing": result.failing_rows, "of": total}
    if not result.success:
        rows = con.sql(
            f"SELECT * EXCLUDE ({CHECK_COLUMN}) FROM ({select}) WHERE NOT "
            f"coalesce({CHECK_COLUMN}, false) LIMIT {SAMPLE_ROWS}"
        ).to_arrow_table()
        result.sample = _jsonable_rows(rows)

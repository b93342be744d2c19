"""Search plans: starting from a metric's index gives exactly what walking the runs gives.

Randomized filters (seeded) over seeded runs with NaN, ±inf and missing metrics, LIKE,
ILIKE and IN, orders and pagination tokens, on SQLite and PostgreSQL. Each filter's
pages are compared across the plans "scan", "index" and "auto", and against the same
filter evaluated in Python over the seeded values.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

import pytest
from sqlalchemy import event

from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.tracking import service as svc
from plinth.tracking.search import (
    Binder,
    bind_driver_values,
    bind_filter_values,
    compile_filter,
    driver_query,
    filter_shape,
    index_drivers,
    parse_filter,
)

METRIC_VALUES = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, math.nan, math.inf, -math.inf, None]
MODELS = ["rf", "RF", "gbm", "lr", "r_f", "r%f", None]
TEAMS = ["risk", "growth", None]
PATTERNS = ["r%", "R%", "r_f", "%f", "r\\%f", "%", "gr%"]


def _seed(platform: Platform, rng: random.Random) -> list[dict[str, Any]]:
    """Runs in two experiments (one run deleted), and the values each got, for the Python check."""
    c = platform.caller()
    runs = []
    for i in range(90):
        experiment = "plans" if i % 6 else "other"
        values = {
            "name": f"run{i:02d}",
            "experiment": experiment,
            "auc": rng.choice(METRIC_VALUES),
            "loss": rng.choice(METRIC_VALUES),
            "model": rng.choice(MODELS),
            "team": rng.choice(TEAMS),
        }
        run = c.call(svc.start_run, experiment=experiment, name=values["name"])
        metrics = [(k, values[k], 0, None) for k in ("auc", "loss") if values[k] is not None]
        params = {"model": values["model"]} if values["model"] is not None else None
        tags = {"team": values["team"]} if values["team"] is not None else None
        c.call(svc.log_batch, run_id=run.id, metrics=metrics, params=params, tags=tags)
        if i % 3 == 0:
            c.call(svc.end_run, run_id=run.id)
        values["status"] = "finished" if i % 3 == 0 else "running"
        values["deleted"] = i == 7
        if values["deleted"]:
            c.call(svc.delete_run, run_id=run.id)
        runs.append(values)
    return runs


def _number(rng: random.Random) -> str:
    return rng.choice(["0.1", "0.25", "0.5", "0.75", "0.9", "1", "0", "2", "1e999", "-1e999"])


def _comparison(rng: random.Random) -> str:
    kind = rng.choice(["metric", "metric", "metric", "param", "tag", "status"])
    if kind == "metric":
        key = rng.choice(["auc", "loss"])
        op = rng.choice(["=", "<", "<=", ">", ">=", "!=", "IN", "NOT IN"])
        if op.endswith("IN"):
            return f"metrics.{key} {op} ({', '.join(_number(rng) for _ in range(rng.randint(1, 3)))})"
        return f"metrics.{key} {op} {_number(rng)}"
    if kind in {"param", "tag"}:
        field, values = ("params.model", MODELS) if kind == "param" else ("tags.team", TEAMS)
        op = rng.choice(["=", "!=", "LIKE", "ILIKE", "NOT LIKE", "IN", "NOT IN"])
        words = [v for v in values if v is not None]
        if op.endswith("IN"):
            return f"{field} {op} ({', '.join(repr(rng.choice(words)) for _ in range(rng.randint(1, 2)))})"
        if "LIKE" in op:
            return f"{field} {op} '{rng.choice(PATTERNS)}'"
        return f"{field} {op} '{rng.choice(words)}'"
    return f"attributes.status {rng.choice(['=', '!='])} 'finished'"


def _filter(rng: random.Random) -> str:
    """Mostly top-level conjunctions (where a metric term can drive), some with or/not inside."""
    terms = [_comparison(rng) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.3:
        terms.append(f"({_comparison(rng)} or {_comparison(rng)})")
    if rng.random() < 0.2:
        terms.append(f"not {_comparison(rng)}")
    return " and ".join(terms)


def _like(pattern: str, text: str, ignore_case: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _passes(node: Any, run: dict[str, Any]) -> bool:
    """The filter evaluated in Python: SQL's rules (a missing or NaN value passes nothing)."""
    kind = type(node).__name__
    if kind == "BoolOp":
        results = [_passes(p, run) for p in node.parts]
        return all(results) if node.op == "and" else any(results)
    if kind == "Not":  # a missing value makes NOT EXISTS true: the run passes "not (...)"
        return not _passes(node.part, run)
    field, op = node.field, node.op
    value = {"metrics": run.get(field.key), "params": run["model"], "tags": run["team"]}.get(field.entity)
    if field.entity == "attributes":
        value = run["status"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    literals = [lit.value for lit in node.value] if isinstance(node.value, tuple) else [node.value.value]
    if field.entity == "metrics":
        literals = [float(v) for v in literals]
    negated, base = op.startswith("NOT "), op.removeprefix("NOT ")
    target = literals[0]
    result = {
        "=": lambda: value == target,
        "!=": lambda: value != target,
        "<": lambda: value < target,
        "<=": lambda: value <= target,
        ">": lambda: value > target,
        ">=": lambda: value >= target,
        "IN": lambda: value in literals,
        "LIKE": lambda: _like(str(target), value, False),
        "ILIKE": lambda: _like(str(target), value, True),
    }[base]()
    return not result if negated else result


def _pages(c: Any, plan: str, **kw: Any) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = c.call(svc.search_runs, plan=plan, page_token=token, **kw)
        pages.append(list(page.name))
        for key, column in page.metrics.items():  # the values come with the rows, NaN as None
            assert len(column) == len(page), key
        token = page.next_page_token
        if token is None:
            return pages


@pytest.mark.parametrize("seed", [11])
def test_index_plan_returns_what_the_scan_returns(any_platform: Platform, seed: int) -> None:
    rng = random.Random(seed)
    runs = _seed(any_platform, rng)
    c = any_platform.caller()
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(any_platform.db.engine, "before_cursor_execute", record)
    driven = 0
    orders = [None, ["metrics.auc desc"], ["metrics.loss"], ["params.model", "attributes.name desc"]]
    try:
        for _ in range(45):
            text = _filter(rng)
            node = parse_filter(text)
            driven += bool(index_drivers(node))
            kw: dict[str, Any] = {
                "filter": text,
                "order_by": rng.choice(orders),
                "max_results": rng.choice([4, 11, 1000]),
                "include_deleted": rng.random() < 0.2,
            }
            if rng.random() < 0.7:
                kw["experiments"] = ["plans"]
            scan = _pages(c, "scan", **kw)
            del statements[:]
            assert _pages(c, "index", **kw) == scan, kw
            if index_drivers(node):  # the index plan started from the index range
                assert any("IN (SELECT latest_metrics.run_id" in s for s in statements), kw
            assert _pages(c, "auto", **kw) == scan, kw
            expected = {
                r["name"]
                for r in runs
                if _passes(node, r)
                and (kw["include_deleted"] or not r["deleted"])
                and ("experiments" not in kw or r["experiment"] == "plans")
            }
            found = [name for page in scan for name in page]
            assert len(found) == len(set(found)) and set(found) == expected, kw
    finally:
        event.remove(any_platform.db.engine, "before_cursor_execute", record)
    assert driven >= 20  # most filters had a metric term to start from


def test_auto_starts_from_a_selective_metric_and_walks_otherwise(platform: Platform) -> None:
    c = platform.caller()
    for i in range(40):
        run = c.call(svc.start_run, experiment="auto", name=f"r{i}")
        c.call(svc.log_batch, run_id=run.id, metrics=[("auc", i / 40, 0, None)], params={"model": "rf"})
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(platform.db.engine, "before_cursor_execute", record)
    try:
        rare = c.call(svc.search_runs, experiments=["auto"], filter="metrics.auc >= 0.95 and params.model = 'rf'")
        started_from_index = any("IN (SELECT latest_metrics.run_id" in s for s in statements)
        del statements[:]
        common = c.call(svc.search_runs, experiments=["auto"], filter="metrics.auc >= 0.1 and params.model = 'rf'")
        walked = not any("IN (SELECT latest_metrics.run_id" in s for s in statements)
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", record)
    assert rare.name == ["r39", "r38"] and started_from_index  # 2 of 40 runs: from the index
    assert len(common) == 36 and walked  # 36 of 40: walking the runs is cheaper


def test_an_unknown_plan_is_refused(platform: Platform) -> None:
    with pytest.raises(InvalidInput, match="plan must be one of auto, scan, index, got 'fast'"):
        platform.caller().call(svc.search_runs, plan="fast")


def test_values_are_bound_in_the_order_the_cached_statement_expects() -> None:
    """A statement built once per shape runs with values collected without building it."""
    rng = random.Random(5)
    for _ in range(200):
        text = _filter(rng)
        node = parse_filter(text)
        for sqlite in (True, False):
            built, collected = Binder("v"), Binder("v", build=False)
            compiled = compile_filter(node, sqlite=sqlite, bind=built)
            bind_filter_values(node, sqlite=sqlite, bind=collected)
            assert built.values == collected.values and built.values, text
            assert compiled is not None and set(compiled.compile().params) == set(built.values), text
            for c in index_drivers(node):
                built, collected = Binder("d"), Binder("d", build=False)
                driver_query(c, sqlite=sqlite, bind=built)
                bind_driver_values(c, sqlite=sqlite, bind=collected)
                assert built.values == collected.values == {"d0": c.field.key, "d1": collected.values["d1"]}
    # the shape ignores keys and values, and tells apart what changes the SQL
    shape = filter_shape(parse_filter("metrics.a > 1 and params.m = 'x'"), sqlite=True)
    assert shape == filter_shape(parse_filter("metrics.b > 7 and params.q = 'y'"), sqlite=True)
    assert shape != filter_shape(parse_filter("metrics.a >= 1 and params.m = 'x'"), sqlite=True)
    assert shape != filter_shape(parse_filter("metrics.a > 1 and params.m = 'x'"), sqlite=False)
    assert filter_shape(parse_filter("status = 'x'"), sqlite=True) != filter_shape(
        parse_filter("name = 'x'"), sqlite=True
    )

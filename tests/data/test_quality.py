"""Profiles and data quality: every expectation type, YAML suites, reject vs warn, the
expression checker, and results stored with the version."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from datasets_support import customers, state_of

import plinth
from plinth.core.errors import InvalidInput, PermissionDenied
from plinth.data import expect
from plinth.data.expression import checked_select

SUITE_YAML = """
name: churn-basic
expectations:
  - not_null: customer_id
  - unique: customer_id
  - between: {column: tenure, min: 1, max: 72}
  - in_set: {column: plan, values: [basic, plus, pro]}
  - matches_regex: {column: email, pattern: "^[a-z0-9.]+@example\\\\.com$"}
  - row_count_between: {min: 10, max: 100000}
  - freshness: {column: signed_up, max_age_seconds: 86400}
  - type: expression
    expression: "monthly_charges > 0 AND (churned OR tenure >= 1)"
  - {type: not_null, column: monthly_charges, mostly: 0.9}
"""


def _frame(n: int = 200) -> pd.DataFrame:
    df = customers(n)
    df["email"] = [f"user{i}@example.com" for i in range(n)]
    df["signed_up"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)) - pd.to_timedelta(np.arange(n), unit="min")
    return df


def test_profile_is_computed_on_ingest_and_stored(platform) -> None:  # type: ignore[no-untyped-def]
    df = _frame(500)
    df.loc[:49, "monthly_charges"] = np.nan
    result = plinth.data.ingest("churn", df)
    assert result.version.has_profile
    p = plinth.data.profile("churn@1")
    assert p.row_count == 500
    cols = {c.name: c for c in p.columns}
    mc = cols["monthly_charges"]
    valid = df.monthly_charges.dropna()
    assert (mc.kind, mc.type, mc.nulls, mc.null_share) == ("numeric", "double", 50, 0.1)
    assert mc.min == valid.min() and mc.max == valid.max()
    assert mc.mean == pytest.approx(valid.mean()) and mc.std == pytest.approx(valid.std())
    assert mc.quantiles is not None and mc.quantiles["p50"] == pytest.approx(valid.median(), rel=0.05)
    assert mc.histogram is not None and len(mc.histogram) == 20 and sum(b.count for b in mc.histogram) == 450
    plan = cols["plan"]
    assert plan.kind == "text" and plan.distinct == 3
    assert {t.value: t.count for t in plan.top or []} == df.plan.value_counts().to_dict()
    assert cols["churned"].kind == "boolean" and cols["signed_up"].kind == "temporal"
    assert cols["customer_id"].distinct == pytest.approx(500, rel=0.05)
    # the stored one comes back as it was; refresh recomputes
    assert plinth.data.profile("churn").computed_at == p.computed_at
    assert plinth.data.profile("churn", refresh=True).computed_at > p.computed_at
    skipped = plinth.data.ingest("churn", df, profile=False)
    assert not skipped.version.has_profile
    assert plinth.data.profile("churn@2").row_count == 1000  # computed on demand, then stored
    assert plinth.data.get_version("churn@2").has_profile


def test_every_expectation_type_passes_on_good_data(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("churn", _frame())
    result = plinth.data.validate("churn", SUITE_YAML)
    assert result.suite == "churn-basic" and result.trigger == "on_demand"
    assert [r.success for r in result.results] == [True] * 9, [r.message for r in result.results if not r.success]
    assert result.success and plinth.data.get_version("churn").quality is True
    assert result.results[5].observed == 200


def test_failures_report_observed_values_and_failing_rows(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    df = _frame()
    df.loc[3, "customer_id"] = 7  # a duplicate
    df.loc[5, "tenure"] = 99
    df.loc[6, "plan"] = "gold"
    df.loc[8, "email"] = "someone@elsewhere.org"
    df.loc[9, "monthly_charges"] = -5.0
    df["signed_up"] = df["signed_up"] - pd.Timedelta(days=3)
    plinth.data.ingest("churn", df)
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE_YAML)
    result = plinth.data.validate("datasets:/churn@1", str(path))
    by = {r.label: r for r in result.results}
    assert not result.success
    assert by["unique(customer_id)"].observed == {"duplicates": 1}
    assert by["unique(customer_id)"].sample == [{"customer_id": 7, "occurrences": 2}]
    between = by["between(tenure)"]
    assert not between.success and between.failing_rows == 1 and between.sample[0]["tenure"] == 99
    assert between.message == "1 of 200 rows fail (0.50%)"
    assert by["in_set(plan)"].sample[0]["plan"] == "gold"
    assert by["matches_regex(email)"].sample[0]["email"] == "someone@elsewhere.org"
    fresh = by["freshness(signed_up)"]
    assert not fresh.success and fresh.observed["age_seconds"] > 3 * 86400 - 60
    expr = by["expression(monthly_charges > 0 AND (churned OR tenure >= 1))"]
    assert not expr.success and expr.sample[0]["monthly_charges"] == -5.0
    assert by["not_null(customer_id)"].success and by["not_null(monthly_charges)"].success
    stored = plinth.data.quality_results("churn", version=1)
    assert [r.id for r in stored] == [result.id] and stored[0].results[1].sample == [
        {"customer_id": 7, "occurrences": 2}
    ]
    assert plinth.data.get_version("churn").quality is False


def test_reject_leaves_the_dataset_unchanged_and_warn_records(platform) -> None:  # type: ignore[no-untyped-def]
    suite = expect.suite("ids", expect.unique("customer_id"), expect.between("tenure", min=1, max=72))
    plinth.data.ingest("churn", _frame(100), expectations=suite)
    before = state_of(platform, "churn")
    dup = _frame(10)  # customer ids 0..9 exist already: the appended table would have duplicates
    with pytest.raises(InvalidInput) as err:
        plinth.data.ingest("churn", dup, expectations=suite)
    assert err.value.message.startswith(
        "dataset 'churn' was not changed: 1 of 2 expectations failed (suite 'ids'): "
        "unique(customer_id): 10 of 110 rows fail"
    )
    assert err.value.details["results"][0]["success"] is False
    assert state_of(platform, "churn") == before
    with pytest.warns(plinth.data.DataQualityWarning, match="datasets:/churn/2 failed expectations: unique"):
        warned = plinth.data.ingest("churn", dup, expectations=suite, on_failure="warn")
    assert warned.validation is not None and not warned.validation.success
    assert warned.version.quality is False and warned.validation.trigger == "ingest"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = plinth.data.ingest("churn", _frame(5), mode="overwrite", expectations=suite, on_failure="warn")
    assert ok.version.version == 3 and ok.version.quality is True
    assert [(r.version, r.success) for r in plinth.data.quality_results("churn")] == [(3, True), (2, False), (1, True)]


def test_bad_suites_are_refused_with_what_is_wrong(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("churn", _frame(20))
    cases = [
        ([{"type": "not_null"}], "expectation not_null: needs a column"),
        ([{"type": "not_null", "column": "nope"}], "expectation not_null(nope): column 'nope' is not in the dataset"),
        ([{"type": "between", "column": "tenure"}], "expectation between(tenure): needs min, max or both"),
        (
            [{"type": "in_set", "column": "plan", "values": []}],
            "expectation in_set(plan): needs a non-empty 'values' list",
        ),
        (
            [{"type": "matches_regex", "column": "plan", "pattern": "(["}],
            "expectation matches_regex(plan): pattern '([' is not a regular expression",
        ),
        (
            [{"type": "freshness", "column": "plan", "max_age_seconds": 5}],
            "expectation freshness(plan): column 'plan' is not a date or timestamp",
        ),
        ([{"type": "median_between", "column": "x"}], "expectation suite: type: Input should be"),
        ("expectations: [not yaml", "expectation suite is not valid YAML"),
        ("name: x", "expectation suite YAML needs an 'expectations' list"),
        (
            [{"type": "expression", "expression": "tenure > (SELECT 1)"}],
            "expression 'tenure > (SELECT 1)' is refused: subqueries are not allowed",
        ),
    ]
    for suite, message in cases:
        with pytest.raises(InvalidInput) as err:
            plinth.data.validate("churn", suite)
        assert err.value.message.startswith(message), err.value.message
    assert plinth.data.quality_results("churn") == []


@pytest.mark.parametrize(
    ("expression", "why"),
    [
        ("tenure > 1; DROP TABLE __t", "syntax error at or near"),
        ("1) FROM __t; DROP TABLE __t; SELECT (1", "Only SELECT statements"),
        ("1=1) AS __check, * FROM read_csv('/etc/passwd'), __t --", "it must be a single expression"),
        ("tenure IN (SELECT tenure FROM __t)", "subqueries are not allowed"),
        ("EXISTS (SELECT 1)", "subqueries are not allowed"),
        ("getenv('HOME') = 'x'", "function 'getenv' is not on the allow-list"),
        ("read_text('/etc/passwd') IS NULL", "function 'read_text' is not on the allow-list"),
        ("count(*) > 0", "function 'count_star' is not on the allow-list"),
        ("sum(tenure) OVER () > 0", "window functions are not allowed"),
        ("tenure > ?", "parameters are not allowed"),
        ("list_filter([1], x -> x > 0) IS NULL", "function 'list_filter' is not on the allow-list"),
        ("t.tenure > 1", "column 't.tenure' must be a plain column name"),
        ("secret > 1", "'secret' is not a column of the dataset"),
        ("main.abs(tenure) > 1", "qualified function names are not allowed"),
        ("", "an expression expectation needs a non-empty SQL boolean"),
    ],
)
def test_expression_checker_refuses_anything_but_one_expression(expression: str, why: str) -> None:
    con = duckdb.connect()
    with pytest.raises(InvalidInput, match=why.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        checked_select(con, expression, ["tenure", "plan"])


def test_expression_checker_renders_the_checked_tree() -> None:
    con = duckdb.connect()
    sql = checked_select(con, "lower(plan) LIKE 'p%' AND tenure BETWEEN 1 AND 10 OR plan IS NULL", ["tenure", "plan"])
    assert (
        sql == "SELECT *, (((lower(plan) ~~ 'p%') AND (tenure BETWEEN 1 AND 10)) OR (plan IS NULL)) AS __check FROM __t"
    )


def test_validation_needs_write_and_reading_needs_read(platform, call) -> None:  # type: ignore[no-untyped-def]
    from plinth.core.context import Actor, Grant
    from plinth.data import service as svc

    plinth.data.ingest("churn", _frame(20))
    viewer = Actor(name="vic", grants={"default": Grant("viewer")})
    stranger = Actor(name="eve")
    caller = platform.caller(viewer)
    assert caller.call(svc.get_version, ref="churn").version == 1
    with pytest.raises(PermissionDenied, match="'vic' is a viewer in project 'default'; writing needs editor"):
        caller.call(svc.validate, ref="churn", suite=[{"type": "not_null", "column": "plan"}])
    with pytest.raises(PermissionDenied, match="'eve' has no role in project 'default'"):
        platform.caller(stranger).call(svc.list_datasets)
    assert plinth.data.quality_results("churn") == []


def test_freshness_with_a_date_column_and_timedelta(platform) -> None:  # type: ignore[no-untyped-def]
    today = datetime.now(UTC).date()
    plinth.data.ingest(
        "events", pd.DataFrame({"day": [today - timedelta(days=5), today - timedelta(days=3)], "n": [1, 2]})
    )
    # a date counts until its end: three days ago ended a little over two days ago
    ok = plinth.data.validate("events", [expect.freshness("day", timedelta(days=3))])
    assert ok.success
    stale = plinth.data.validate("events", [expect.freshness("day", 60)])
    assert not stale.success and "s old, more than 60 s" in stale.results[0].message

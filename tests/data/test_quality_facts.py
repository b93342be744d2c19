"""Validation decided by the Delta log's statistics (null counts, integer bounds) and
``unique`` counted in an array: the same results as the full scan, and the scan where the
statistics do not decide."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import plinth
from plinth.data import delta, quality
from plinth.data.quality import as_suite, evaluate
from plinth.data.schemas import ColumnSchema, Expectation

SUITE = [
    {"type": "not_null", "column": "id"},
    {"type": "not_null", "column": "score", "mostly": 0.85},
    {"type": "not_null", "column": "score"},  # fails: 10 % nulls
    {"type": "unique", "column": "id"},
    {"type": "unique", "column": "dup"},  # fails: repeated values
    {"type": "unique", "column": "wide"},  # a range too wide to count in an array
    {"type": "unique", "columns": ["id", "dup"]},
    {"type": "between", "column": "qty", "min": 0, "max": 1000},  # decided by the bounds
    {"type": "between", "column": "qty", "min": 0, "max": 100},  # not decided: scanned, fails
    {"type": "between", "column": "qty", "min": -0.5, "max": 999.5},
    {"type": "between", "column": "score", "min": -100, "max": 100},  # a float: scanned
    {"type": "in_set", "column": "plan", "values": ["a", "b"]},
    {"type": "row_count_between", "min": 1, "max": 10_000},
]


def frame(n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    score = rng.normal(0, 10, n)
    score[rng.random(n) < 0.1] = np.nan
    dup = np.arange(n, dtype=np.int64)
    dup[::7] = 3  # duplicates
    return pd.DataFrame(
        {
            "id": np.arange(1000, 1000 + n, dtype=np.int64),
            "dup": pd.array(np.where(np.arange(n) % 11 == 0, None, dup), dtype="Int64"),
            "wide": np.arange(n, dtype=np.int64) * 1_000_000_007,
            "qty": rng.integers(0, 1000, n),
            "score": score,
            "plan": rng.choice(["a", "b"], n),
        }
    )


def _both(platform: Any, name: str) -> tuple[list[Any], list[Any], Any]:
    with platform.context() as ctx:
        from plinth.data.service import resolve

        dataset, version = resolve(ctx, name)
        dt = delta.open_table(ctx.stores.tables, dataset.location, version.delta_version)
        columns = {c["name"]: c["type"] for c in version.table_schema}
    facts = delta.log_facts(dt)
    suite = as_suite(SUITE)
    now = datetime.now(UTC)
    out = []
    for f in (facts, None):
        con = delta.duckdb_over(dt)
        try:
            out.append(evaluate(con, columns, suite, now, f))
        finally:
            con.close()
    return out[0], out[1], facts


def test_log_statistics_give_the_scans_results(platform) -> None:  # type: ignore[no-untyped-def]
    df = frame()
    plinth.data.ingest("facts", df)
    more = frame(500).assign(id=lambda d: d["id"] + 10_000, wide=lambda d: d["wide"] + 1)
    plinth.data.ingest("facts", more)  # a second file
    with_facts, scanned, facts = _both(platform, "facts")
    assert facts is not None and facts.rows == 4500
    assert facts.nulls["score"] == int(df["score"].isna().sum()) + 500 - int(frame(500)["score"].notna().sum())
    assert facts.int_bounds["id"] == (1000, 11_499)
    dump = [r.model_dump(exclude={"sample"}) for r in with_facts]
    assert dump == [r.model_dump(exclude={"sample"}) for r in scanned]
    by_label = {r.label: r for r in with_facts}
    assert [r.success for r in with_facts] == [
        True, True, False, True, False, True, True, True, False, True, True, True, True,
    ]  # fmt: skip
    assert by_label["not_null(score)"].failing_rows == int(df["score"].isna().sum()) + int(
        frame(500)["score"].isna().sum()
    )
    assert with_facts[4].observed == scanned[4].observed and with_facts[4].sample == scanned[4].sample
    assert with_facts[4].sample and with_facts[4].sample[0]["occurrences"] > 1
    assert with_facts[2].sample and all(row["score"] is None for row in with_facts[2].sample)


def test_which_checks_the_statistics_decide(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("facts", frame())
    _, _, facts = _both(platform, "facts")
    columns = {"id": "long", "qty": "long", "score": "double", "wide": "long"}

    def decided(**kw: Any) -> Any:
        return quality._decided_by_log(Expectation(**kw), columns, facts)

    assert decided(type="not_null", column="id") == (0, None)
    assert decided(type="between", column="qty", min=0, max=999) == (0, 4000)
    assert decided(type="between", column="qty", min=1, max=999) is None  # 0 occurs: scan
    assert decided(type="between", column="score", min=-1e9, max=1e9) is None  # floats: scan
    assert decided(type="in_set", column="qty", values=[1]) is None
    assert quality._decided_by_log(Expectation(type="not_null", column="id"), columns, None) is None
    con = delta.duckdb_over(delta.open_table(platform.stores.tables, _location(platform)))
    try:
        counted = quality._unique_by_counting(con, Expectation(type="unique", column="id"), columns, facts)
        wide = quality._unique_by_counting(con, Expectation(type="unique", column="wide"), columns, facts)
    finally:
        con.close()
    assert counted == (0, 4000)
    assert wide is None


def test_staged_rows_and_tables_without_statistics_are_scanned(platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from deltalake import write_deltalake

    # a version whose files carry no statistics: every check is scanned, same results
    table = pa.Table.from_pandas(frame(300), preserve_index=False)
    plinth.data.ingest("facts", table)
    location = _location(platform)
    assert delta.log_facts(delta.open_table(platform.stores.tables, location)) is not None
    stats_free = str(tmp_path / "nostats")
    write_deltalake(stats_free, table, configuration={"delta.dataSkippingNumIndexedCols": "0"})
    dt = delta.open_table(platform.stores.tables, stats_free)
    facts = delta.log_facts(dt)
    assert facts is None or not (facts.int_bounds or facts.nulls)
    columns = {c.name: c.type for c in _columns(dt)}
    con = delta.duckdb_over(dt)
    try:
        results = evaluate(con, columns, as_suite(SUITE), datetime.now(UTC), facts)
    finally:
        con.close()
    assert results[0].success and results[3].success and not results[4].success
    # ingest with a suite and on_failure="reject": staged rows are validated by the scan
    bad = frame(50).assign(id=7)
    before = plinth.data.get_dataset("facts").latest.version
    with pytest.raises(plinth.InvalidInput, match=r"unique\(id\)"):
        plinth.data.ingest("facts", bad, expectations=[{"type": "unique", "column": "id"}])
    assert plinth.data.get_dataset("facts").latest.version == before


def _location(platform: Any) -> str:
    from sqlalchemy import select

    from plinth.data.tables import Dataset

    with platform.context() as ctx:
        return str(ctx.session.execute(select(Dataset.location).where(Dataset.name == "facts")).scalar_one())


def _columns(dt: Any) -> list[ColumnSchema]:
    from plinth.data.evolution import delta_columns

    return delta_columns(dt.schema())

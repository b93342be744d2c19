"""The profile's first pass done on the batches while they are written (first ingest and
overwrite): the same profile as a scan of the table, a deterministic quantile sample, and
no version and no thread left behind when the ingest is interrupted."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from datasets_support import customers, state_of

import plinth
from plinth.core.errors import InvalidInput
from plinth.data import delta
from plinth.data.profile_stream import RowSample, StreamProfiler


def mixed(n: int, seed: int = 1) -> pd.DataFrame:
    """Numbers with nulls, text of few and many values, a categorical, a bool, times."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(50, 20, n)
    amount[rng.random(n) < 0.1] = np.nan  # pandas NaN in a float column becomes a null
    return pd.DataFrame(
        {
            "id": np.arange(n, dtype=np.int64),
            "amount": amount,
            "qty": rng.integers(-5, 500, n),
            "plan": rng.choice(["basic", "plus", "pro", None], n),
            "email": [f"user{i % (n // 2 + 1)}@example.com" for i in range(n)],
            "active": rng.random(n) < 0.4,
            # an Arrow dictionary column whose category order is not the text order
            "tier": pd.Categorical(
                rng.choice(["zinc", "gold", "iron"], n), categories=["zinc", "iron", "gold"], ordered=True
            ),
            "seen": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
        }
    )


@pytest.fixture
def streamed_results(monkeypatch) -> list[Any]:  # type: ignore[no-untyped-def]
    """What every StreamProfiler.result() returned (None: the profile scanned the table)."""
    seen: list[Any] = []
    original = StreamProfiler.result

    def spy(self, timeout=None):  # type: ignore[no-untyped-def]
        out = original(self, timeout)
        seen.append(out)
        return out

    monkeypatch.setattr(StreamProfiler, "result", spy)
    return seen


def _no_profile_threads() -> bool:
    return not any(t.name == "plinth-profile" and t.is_alive() for t in threading.enumerate())


def _assert_same_profile(streamed: Any, scanned: Any) -> None:
    assert streamed.row_count == scanned.row_count
    assert [c.name for c in streamed.columns] == [c.name for c in scanned.columns]
    for a, b in zip(streamed.columns, scanned.columns, strict=True):
        for attr in ("type", "kind", "count", "nulls", "null_share", "distinct", "min", "max"):
            assert getattr(a, attr) == getattr(b, attr), (a.name, attr)
        for attr in ("mean", "std"):
            x, y = getattr(a, attr), getattr(b, attr)
            assert (x is None) == (y is None), (a.name, attr)
            if x is not None:
                assert x == pytest.approx(y, rel=1e-9, abs=1e-9), (a.name, attr)
        assert a.quantiles == b.quantiles, a.name
        assert a.histogram == b.histogram, a.name
        assert a.top == b.top, a.name


def test_one_pass_profile_equals_a_scan_of_the_table(platform, tmp_path: Path, streamed_results) -> None:  # type: ignore[no-untyped-def]
    df = mixed(5000)
    csv = tmp_path / "mixed.csv"
    df.to_csv(csv, index=False)
    result = plinth.data.ingest("mixed", csv)
    assert len(streamed_results) == 1 and streamed_results[0] is not None  # the one-pass path ran
    streamed = plinth.data.profile("mixed@1")
    scanned = plinth.data.profile("mixed@1", refresh=True)  # a scan of the stored version
    assert len(streamed_results) == 1  # the refresh scanned the version, it did not stream
    _assert_same_profile(streamed, scanned)
    amount = next(c for c in streamed.columns if c.name == "amount")
    assert amount.nulls == int(df["amount"].isna().sum()) > 0
    assert amount.histogram is not None and sum(b.count for b in amount.histogram) == amount.count
    plan = next(c for c in streamed.columns if c.name == "plan")
    assert {t.value for t in plan.top or []} == {"basic", "plus", "pro"}
    assert result.version.row_count == 5000

    # an overwrite also streams; an append scans the version (old rows + new)
    plinth.data.ingest("mixed", mixed(3000, seed=2), mode="overwrite")
    plinth.data.ingest("mixed", mixed(1000, seed=3), mode="append")
    assert streamed_results[1] is not None and len(streamed_results) == 2
    _assert_same_profile(plinth.data.profile("mixed@2"), plinth.data.profile("mixed@2", refresh=True))
    assert plinth.data.profile("mixed@3").row_count == 4000


def test_quantiles_beyond_the_sample_are_close_and_repeatable(platform, streamed_results) -> None:  # type: ignore[no-untyped-def]
    n = 60_000  # more rows than the quantile sample
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 1000, n)
    table = pa.table({"x": values, "k": np.arange(n)})
    batches = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=7000))
    plinth.data.ingest("big", batches)
    table2 = pa.table({"x": values, "k": np.arange(n)})
    plinth.data.ingest("big2", pa.RecordBatchReader.from_batches(table2.schema, table2.to_batches(max_chunksize=7000)))
    assert all(r is not None for r in streamed_results) and len(streamed_results) == 2
    first = next(c for c in plinth.data.profile("big").columns if c.name == "x")
    again = next(c for c in plinth.data.profile("big2").columns if c.name == "x")
    assert first.quantiles == again.quantiles  # the same rows in the same batches: the same sample
    levels = [0.05, 0.25, 0.5, 0.75, 0.95]
    exact = dict(zip(["p05", "p25", "p50", "p75", "p95"], np.quantile(values, levels), strict=True))
    assert first.quantiles is not None and set(first.quantiles) == set(exact)
    for key, value in exact.items():
        assert abs(first.quantiles[key] - value) < 20, key  # 2 % of the range; the sample's error is ~0.4 %
    assert first.count == n and first.histogram is not None
    assert sum(b.count for b in first.histogram) == n


def test_row_sample_is_uniform_bounded_and_ordered() -> None:
    n, size = 200_000, 1000
    table = pa.table({"v": np.arange(n, dtype=np.int64), "s": pa.array(["x"] * n)})
    sample = RowSample(["v"], size=size, seed=3)
    for batch in table.to_batches(max_chunksize=9_000):
        sample.add(batch)
    got = sample.table(table.schema)
    assert got.num_rows == size and got.column_names == ["v"]
    v = got.column("v").to_numpy()
    assert len(set(v.tolist())) == size and (np.diff(v) > 0).all()  # distinct rows, in stream order
    # roughly uniform: each tenth of the stream holds about a tenth of the sample
    per_tenth = np.bincount(v // (n // 10), minlength=10)
    assert per_tenth.min() > 60 and per_tenth.max() < 140
    small = RowSample(["v"], size=size)
    small.add(table.slice(0, 500).to_batches()[0])
    assert small.table(table.schema).column("v").to_pylist() == list(range(500))


def test_interrupted_first_ingest_leaves_no_dataset_and_no_thread(platform) -> None:  # type: ignore[no-untyped-def]
    schema = pa.Schema.from_pandas(customers(1), preserve_index=False)

    def stream(end: BaseException):  # type: ignore[no-untyped-def]
        for i in range(12):  # more batches than the profile queue holds
            yield pa.RecordBatch.from_pandas(customers(500, start=i * 500), preserve_index=False)
        raise end

    with pytest.raises(KeyboardInterrupt):
        plinth.data.ingest("churn", pa.RecordBatchReader.from_batches(schema, stream(KeyboardInterrupt())))
    assert state_of(platform, "churn")["dataset"] is None
    assert _no_profile_threads()
    with pytest.raises(InvalidInput, match="cannot read the source: connection reset"):
        plinth.data.ingest("churn", pa.RecordBatchReader.from_batches(schema, stream(OSError("connection reset"))))
    assert state_of(platform, "churn")["dataset"] is None
    assert _no_profile_threads()
    # the next ingest of the name is a clean first version
    done = plinth.data.ingest("churn", customers(100))
    assert done.version.version == 1 and done.version.has_profile
    assert _no_profile_threads()


def test_bad_csv_line_on_first_ingest_names_file_and_line(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = ["a,b"] + [f"{i},{i * 2}" for i in range(3000)]
    rows[2500] = "7,not-a-number,extra"
    csv = tmp_path / "bad.csv"
    csv.write_text("\n".join(rows) + "\n")
    with pytest.raises(InvalidInput) as info:
        plinth.data.ingest("bad", csv)
    assert "bad.csv" in str(info.value) and "line" in str(info.value)
    assert state_of(platform, "bad")["dataset"] is None
    assert _no_profile_threads()


def test_a_failing_profile_thread_falls_back_to_scanning(platform, monkeypatch, streamed_results) -> None:  # type: ignore[no-untyped-def]
    original = delta.new_duckdb

    def failing_in_profile_thread():  # type: ignore[no-untyped-def]
        if threading.current_thread().name == "plinth-profile":
            raise MemoryError("no memory for the profile")
        return original()

    monkeypatch.setattr(delta, "new_duckdb", failing_in_profile_thread)
    df = mixed(800)
    result = plinth.data.ingest("mixed", df)
    assert streamed_results == [None]  # the stream pass failed; the ingest went on
    assert result.version.row_count == 800 and result.version.has_profile
    monkeypatch.setattr(delta, "new_duckdb", original)
    _assert_same_profile(plinth.data.profile("mixed@1"), plinth.data.profile("mixed@1", refresh=True))
    assert _no_profile_threads()

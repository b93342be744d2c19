"""Versioned datasets embedded: every kind of source, versions, tags, time travel, reads,
schema evolution, diff and deterministic splits."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets_support import customers, state_of, write_csv

import plinth
from plinth.core.errors import Conflict, InvalidInput


def test_every_source_kind_becomes_a_version(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    df = customers(50)
    write_csv(tmp_path / "a.csv", df)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "a.parquet")
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in df.to_dict("records")) + "\n")
    folder = tmp_path / "parts"
    folder.mkdir()
    write_csv(folder / "p1.csv", customers(10, start=1000))
    write_csv(folder / "p2.csv", customers(15, start=2000))
    (folder / "_SUCCESS").write_text("")  # markers and hidden files are skipped
    table = pa.Table.from_pandas(df, preserve_index=False)
    sources = [
        (tmp_path / "a.csv", 50, "csv file"),
        (tmp_path / "a.parquet", 50, "parquet file"),
        (tmp_path / "a.jsonl", 50, "jsonl file"),
        (folder, 25, "folder"),
        (df, 50, "pandas DataFrame"),
        (pl.from_pandas(df), 50, "polars DataFrame"),
        (table, 50, "Arrow table"),
        (table.to_reader(max_chunksize=7), 50, "Arrow record batch stream"),
    ]
    total = 0
    for i, (source, rows, described) in enumerate(sources, 1):
        result = plinth.data.ingest("customers", source)
        total += rows
        v = result.version
        assert (v.version, v.rows_written, v.row_count) == (i, rows, total), described
        assert v.source.startswith(described)
        assert [c.name for c in v.columns] == list(df.columns)
        assert v.mode == ("create" if i == 1 else "append")
    assert plinth.data.read("customers").num_rows == total
    assert state_of(platform, "customers")["versions"] == len(sources)


def test_versions_tags_and_time_travel(platform) -> None:  # type: ignore[no-untyped-def]
    first = plinth.data.ingest("churn", customers(100), tags=["train-2026-11"], description="first batch")
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    plinth.data.ingest("churn", customers(30, start=100))
    third = plinth.data.ingest("churn", customers(10, start=500), mode="overwrite")
    assert first.version.tags == ["train-2026-11"]
    assert third.version.mode == "overwrite" and third.version.row_count == 10
    for ref in ("datasets:/churn@train-2026-11", "datasets:/churn@1", "datasets:/churn/1", "churn@1"):
        assert plinth.data.read(ref).num_rows == 100, ref
    assert plinth.data.read("churn", as_of=between).num_rows == 100
    assert plinth.data.read("datasets:/churn").num_rows == 10
    assert plinth.data.read("churn@2").num_rows == 130
    assert plinth.data.get_version("churn", as_of=between).version == 1
    # tags pin: moving needs force
    with pytest.raises(Conflict, match="tag 'train-2026-11' of dataset 'churn' pins version 1"):
        plinth.data.tag("churn", "train-2026-11", version=2)
    assert plinth.data.tag("churn", "train-2026-11", version=2, force=True).tags == ["train-2026-11"]
    assert plinth.data.read("churn@train-2026-11").num_rows == 130
    with pytest.raises(InvalidInput, match="would read as a version number"):
        plinth.data.tag("churn", "42")
    detail = plinth.data.get_dataset("churn")
    assert detail.dataset.latest_version == 3 and detail.tags == {"train-2026-11": 2}
    assert detail.dataset.description == "first batch"
    assert [v.version for v in plinth.data.list_versions("churn")] == [3, 2, 1]
    assert [d.name for d in plinth.data.list_datasets()] == ["churn"]
    plinth.data.untag("churn", "train-2026-11")
    assert plinth.data.get_dataset("churn").tags == {}


def test_reads_push_columns_and_filters_down_and_stream(platform) -> None:  # type: ignore[no-untyped-def]
    df = customers(1000)
    plinth.data.ingest("churn", df)
    t = plinth.data.read(
        "churn", columns=["customer_id", "plan"], filter=[("plan", "=", "pro"), ("customer_id", "<", 500)]
    )
    expected = df[(df.plan == "pro") & (df.customer_id < 500)]
    assert t.column_names == ["customer_id", "plan"]
    assert sorted(t.column("customer_id").to_pylist()) == expected.customer_id.tolist()
    t = plinth.data.read("churn", filter=[("plan", "in", ["basic", "plus"]), ("tenure", ">=", 70)])
    assert t.num_rows == len(df[df.plan.isin(["basic", "plus"]) & (df.tenure >= 70)])
    reader = plinth.data.read_batches("churn")
    assert isinstance(reader, pa.RecordBatchReader)
    assert sum(b.num_rows for b in reader) == 1000
    assert plinth.data.read("churn").to_pandas().sort_values("customer_id").reset_index(drop=True).equals(df)
    with pytest.raises(InvalidInput, match="filter column 'nope' is not in the dataset"):
        plinth.data.read("churn", filter=[("nope", "=", 1)])
    with pytest.raises(InvalidInput, match="filter op '~' is not one of"):
        plinth.data.read("churn", filter=[("plan", "~", 1)])
    with pytest.raises(InvalidInput, match=r"columns \['x'\] are not in datasets:/churn/1"):
        plinth.data.read("churn", columns=["x"])


def test_schema_evolution_rules(platform) -> None:  # type: ignore[no-untyped-def]
    df = customers(20)
    plinth.data.ingest("churn", df)
    # adding a nullable column is fine; the old rows read as null
    added = plinth.data.ingest("churn", customers(5, start=100).assign(region="eu"))
    assert [str(c) for c in added.version.schema_changes] == ["column 'region' added (string)"]
    assert plinth.data.read("churn").column("region").null_count == 20
    # a narrower integer is cast into the table's type: not a change
    narrow = customers(3, start=200).assign(region="us", tenure=lambda d: d.tenure.astype("int32"))
    assert plinth.data.ingest("churn", narrow).version.schema_changes == []
    before = state_of(platform, "churn")
    with pytest.raises(Conflict) as dropped:
        plinth.data.ingest("churn", customers(5).drop(columns=["plan"]).assign(region="x"))
    assert dropped.value.message.startswith(
        "the source would change the schema of dataset 'churn': column 'plan' dropped (was string)"
    )
    assert dropped.value.details["changes"][0]["kind"] == "dropped"
    with pytest.raises(Conflict, match="column 'tenure' changed type from long to string"):
        plinth.data.ingest("churn", customers(5).assign(region="x", tenure="long ago"))
    renamed = customers(5).rename(columns={"plan": "tier"}).assign(region="x")
    with pytest.raises(Conflict, match="column 'plan' dropped .*column 'tier' added"):
        plinth.data.ingest("churn", renamed)
    assert state_of(platform, "churn") == before
    # allow_breaking: an append keeps the dropped column (null for new rows)...
    kept = plinth.data.ingest(
        "churn", customers(4, start=300).drop(columns=["plan"]).assign(region="x"), allow_breaking=True
    )
    assert "plan" in [c.name for c in kept.version.columns]
    # ...an append cannot change a type even then; an overwrite can
    with pytest.raises(InvalidInput, match="an append cannot change a column's type"):
        plinth.data.ingest("churn", customers(5).assign(region="x", tenure="t"), allow_breaking=True)
    new = plinth.data.ingest(
        "churn", pd.DataFrame({"id": ["a", "b"], "tenure": ["x", "y"]}), mode="overwrite", allow_breaking=True
    )
    assert [(c.name, c.type) for c in new.version.columns] == [("id", "string"), ("tenure", "string")]
    assert plinth.data.read("churn").num_rows == 2
    d = plinth.data.diff("churn@1", "churn")
    assert d.row_count_a == 20 and d.row_count_b == 2 and d.row_count_change == -18
    assert {(c.kind, c.column) for c in d.schema_changes} == {
        ("dropped", "customer_id"),
        ("type_changed", "tenure"),
        ("dropped", "monthly_charges"),
        ("dropped", "plan"),
        ("dropped", "churned"),
        ("added", "id"),
    }


def test_split_is_deterministic_across_versions(platform) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    plinth.data.ingest("churn", customers(2000))
    first = plinth.data.split("churn@1", key="customer_id", train=0.8)
    assert set(first) == {"train", "test"}
    assert first["train"].num_rows + first["test"].num_rows == 2000
    assert 1450 < first["train"].num_rows < 1750
    plinth.data.ingest("churn", customers(1000, seed=5, start=2000))
    second = plinth.data.split("churn@2", key="customer_id", train=0.8)
    train1 = set(first["train"].column("customer_id").to_pylist())
    train2 = set(second["train"].column("customer_id").to_pylist())
    assert train1 == {c for c in train2 if c < 2000}  # the same customers, the same split
    for cid in list(train1)[:20]:  # and anyone can recompute it
        assert int(hashlib.md5(str(cid).encode()).hexdigest()[:8], 16) / 2**32 < 0.8
    three = plinth.data.split("churn@2", key="customer_id", train=0.7, validation=0.1, salt="s1", columns=["tenure"])
    assert set(three) == {"train", "validation", "test"} and three["train"].column_names == ["tenure"]
    assert sum(t.num_rows for t in three.values()) == 3000
    with pytest.raises(InvalidInput, match="split fractions add up to 1.2"):
        plinth.data.split("churn", key="customer_id", train=0.9, validation=0.3)
    with pytest.raises(InvalidInput, match="split key 'nope' is not a column"):
        plinth.data.split("churn", key="nope")


def test_as_of_before_the_first_version_and_naive_times(platform) -> None:  # type: ignore[no-untyped-def]
    from plinth.core.errors import NotFound

    plinth.data.ingest("churn", customers(5))
    with pytest.raises(NotFound, match="dataset 'churn' had no version at"):
        plinth.data.read("churn", as_of=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(InvalidInput, match="as_of must carry a time zone"):
        plinth.data.read("churn", as_of=datetime.now())
    with pytest.raises(InvalidInput, match="give either a version/tag or as_of"):
        plinth.data.read("churn@1", as_of=datetime.now(UTC))

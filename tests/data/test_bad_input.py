"""Bad input never leaves a half-written version: each test asserts the error type, its
message, and that no version row, Delta commit or event appeared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets_support import customers, state_of, write_csv

import plinth
from plinth.core.errors import Conflict, InvalidInput, NotFound


def _bad_csv(path: Path, bad_line: int, text: str, rows: int = 60_000) -> Path:
    """A CSV whose physical line ``bad_line`` (1 = the header) is ``text``."""
    lines = ["customer_id,tenure,plan"] + [f"{i},{i % 72},basic" for i in range(rows)]
    lines[bad_line - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_csv_row_names_file_and_line_and_writes_nothing(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("churn", write_csv(tmp_path / "good.csv", customers(10)[["customer_id", "tenure", "plan"]]))
    before = state_of(platform, "churn")
    # far beyond DuckDB's type-sniffing sample, so the error comes while rows stream into Delta
    bad = _bad_csv(tmp_path / "bad.csv", 45_002, "45000,not-a-number,basic")
    with pytest.raises(InvalidInput) as err:
        plinth.data.ingest("churn", bad)
    assert err.value.message.startswith(f'{bad}: line 45002: Error when converting column "tenure"')
    assert "nothing was written" in err.value.message
    assert err.value.details == {"field": "source", "file": str(bad), "line": 45002}
    assert state_of(platform, "churn") == before
    # too many fields on a line of a brand-new dataset: no dataset appears at all
    extra = _bad_csv(tmp_path / "extra.csv", 30_001, "29999,1,basic,surprise")
    with pytest.raises(InvalidInput, match=r"extra\.csv: line 30001: "):
        plinth.data.ingest("fresh", extra)
    assert state_of(platform, "fresh")["dataset"] is None
    with pytest.raises(NotFound):
        plinth.data.get_dataset("fresh")


def test_quarantine_sets_bad_rows_aside(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = _bad_csv(tmp_path / "bad.csv", 30_002, "30000,oops,basic", rows=40_000)
    lines = bad.read_text().splitlines()
    lines[35_001] = "35000,1,basic,extra-field"
    bad.write_text("\n".join(lines) + "\n")
    result = plinth.data.ingest("churn", bad, on_bad_lines="quarantine")
    assert result.quarantined == 2 and result.version.rows_quarantined == 2
    assert result.version.row_count == 39_998
    q = plinth.data.quarantine("churn").sort_by("line").to_pylist()
    assert [(r["version"], r["file"], r["line"], r["raw"]) for r in q] == [
        (1, str(bad), 30_002, "30000,oops,basic"),
        (1, str(bad), 35_002, "35000,1,basic,extra-field"),
    ]
    assert 'Could not convert string "oops"' in q[0]["error"]
    with pytest.raises(InvalidInput, match="on_bad_lines='quarantine' applies to CSV sources only"):
        plinth.data.ingest("churn", customers(3), on_bad_lines="quarantine")


def test_files_that_are_not_what_their_extension_says(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    real_parquet = tmp_path / "real.parquet"
    pq.write_table(pa.table({"a": [1, 2]}), real_parquet)
    fake_csv = tmp_path / "data.csv"
    shutil.copy(real_parquet, fake_csv)
    fake_parquet = write_csv(tmp_path / "data.parquet", customers(3))
    fake_jsonl = write_csv(tmp_path / "data.jsonl", customers(3))
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"\x00\x01\x02garbage\x00" * 100)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    cases = [
        (fake_csv, f"{fake_csv} is not a CSV file: it looks like Parquet"),
        (fake_parquet, f"{fake_parquet} is not a Parquet file: it looks like text"),
        (fake_jsonl, f"{fake_jsonl} is not a JSON lines file: it looks like text"),
        (binary, f"{binary} is not a CSV file: it looks like binary data"),
        (empty, f"{empty} is empty"),
        (tmp_path / "x.xlsx", f"{tmp_path / 'x.xlsx'} does not exist"),
    ]
    (tmp_path / "y.xlsx").write_text("a")
    cases.append((tmp_path / "y.xlsx", "cannot tell the format of 'y.xlsx' from its extension"))
    for path, message in cases:
        with pytest.raises(InvalidInput) as err:
            plinth.data.ingest("churn", path)
        assert err.value.message.startswith(message), err.value.message
    assert state_of(platform, "churn")["dataset"] is None
    # naming the real format works
    assert plinth.data.ingest("churn", fake_csv, format="parquet").version.row_count == 2


def test_unknown_versions_tags_and_datasets_are_not_found(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("churn", customers(5), tags=["gold"])
    cases = [
        ("datasets:/churn@7", "dataset 'churn' has no version 7 (latest is 1)"),
        ("datasets:/churn/7", "dataset 'churn' has no version 7 (latest is 1)"),
        ("churn@silver", "dataset 'churn' has no tag 'silver' (tags: gold)"),
        ("datasets:/nope", "dataset 'nope' does not exist in project 'default'"),
    ]
    for ref, message in cases:
        with pytest.raises(NotFound) as err:
            plinth.data.read(ref)
        assert err.value.message == message
    with pytest.raises(InvalidInput, match="kind 'models' is not one of datasets"):
        plinth.data.read("models:/churn@1")
    with pytest.raises(NotFound, match="has no tag 'silver'"):
        plinth.data.diff("churn@gold", "churn@silver")


def test_bad_options_are_refused_before_anything_is_read(platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    df = customers(3)
    for kwargs, message in [
        ({"mode": "upsert"}, "mode must be 'append' or 'overwrite', not 'upsert'"),
        ({"on_failure": "ignore"}, "on_failure must be 'reject' or 'warn', not 'ignore'"),
        ({"on_bad_lines": "skip"}, "on_bad_lines must be 'error' or 'quarantine'"),
        ({"tags": ["../x"]}, "tag '../x' is not valid"),
    ]:
        with pytest.raises(InvalidInput) as err:
            plinth.data.ingest("churn", df, **kwargs)
        assert err.value.message.startswith(message), err.value.message
    with pytest.raises(InvalidInput, match="dataset '../etc' is not valid"):
        plinth.data.ingest("../etc", df)
    with pytest.raises(InvalidInput, match="cannot ingest a dict"):
        plinth.data.ingest("churn", {"a": 1})
    with pytest.raises(InvalidInput, match="has column 'A' twice"):
        plinth.data.ingest("churn", pa.table([[1], [2]], names=["a", "A"]))
    assert state_of(platform, "churn")["dataset"] is None
    plinth.data.ingest("churn", df, tags=["gold"])
    before = state_of(platform, "churn")
    with pytest.raises(Conflict, match="tag 'gold' of dataset 'churn' pins version 1"):
        plinth.data.ingest("churn", df, tags=["gold"])
    assert state_of(platform, "churn") == before


def test_interrupted_ingest_leaves_no_partial_version(platform) -> None:  # type: ignore[no-untyped-def]
    plinth.data.ingest("churn", customers(100))
    before = state_of(platform, "churn")
    schema = pa.Schema.from_pandas(customers(1), preserve_index=False)

    def stream():  # type: ignore[no-untyped-def]
        yield pa.RecordBatch.from_pandas(customers(50, start=1000), preserve_index=False)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        plinth.data.ingest("churn", pa.RecordBatchReader.from_batches(schema, stream()))
    assert state_of(platform, "churn") == before

    def broken():  # type: ignore[no-untyped-def]
        yield pa.RecordBatch.from_pandas(customers(50, start=1000), preserve_index=False)
        raise OSError("connection reset by peer")

    with pytest.raises(InvalidInput, match="cannot read the source: connection reset by peer"):
        plinth.data.ingest("churn", pa.RecordBatchReader.from_batches(schema, broken()))
    assert state_of(platform, "churn") == before
    assert plinth.data.read("churn").num_rows == 100


def test_failure_after_the_delta_commit_rolls_the_table_back(platform, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from plinth.data import profiling

    plinth.data.ingest("churn", customers(100))
    before = state_of(platform, "churn")

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("disk full while profiling")

    monkeypatch.setattr(profiling, "compute_profile", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        plinth.data.ingest("churn", customers(50, start=500))
    after = state_of(platform, "churn")
    assert after["versions"] == before["versions"] and after["events"] == before["events"]
    monkeypatch.undo()
    # the Delta table went back to the recorded content (restore is a new commit)
    assert plinth.data.read("churn").num_rows == 100
    nxt = plinth.data.ingest("churn", customers(10, start=900))
    assert (nxt.version.version, nxt.version.row_count) == (2, 110)
    # a first ingest that fails after its commit leaves no table behind
    monkeypatch.setattr(profiling, "compute_profile", crash)
    with pytest.raises(RuntimeError):
        plinth.data.ingest("other", customers(5))
    assert state_of(platform, "other")["dataset"] is None


def test_orphan_delta_commit_from_a_crash_is_rolled_back(platform) -> None:  # type: ignore[no-untyped-def]
    from deltalake import write_deltalake
    from sqlalchemy import select

    from plinth.data.tables import Dataset

    plinth.data.ingest("churn", customers(100))
    with platform.context() as ctx:
        location = ctx.session.execute(select(Dataset.location)).scalar_one()
    # a process died after its Delta commit, before recording the version
    write_deltalake(location, pa.Table.from_pandas(customers(7, start=5000), preserve_index=False), mode="append")
    assert plinth.data.read("churn").num_rows == 100  # readers follow the metadata
    nxt = plinth.data.ingest("churn", customers(10, start=900))
    assert nxt.version.row_count == 110
    assert 5000 not in plinth.data.read("churn").column("customer_id").to_pylist()

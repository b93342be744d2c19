"""Per-view indexes kept on disk: built at apply, reused by a fresh process, rebuilt when the
source changes or the files do not read back; the probe's results through every path."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from features_support import CASES, T, driver_stats_rows, entity_frame, setup_repo

from plinth.core.platform import Platform
from plinth.features.index import index_cache, take_rows
from plinth.features.index_files import index_root
from plinth.features.online import get_online_features, materialize, store_of, table_name
from plinth.features.retrieval import get_historical_features
from plinth.features.service import _find

FEATURES = ["driver_stats:conv_rate", "driver_stats:trips", "driver_daily:rating"]


def _values(table: pa.Table, column: str) -> list[object]:
    return [None if isinstance(v, float) and math.isnan(v) else v for v in table.column(column).to_pylist()]


def _expected_ok(out: pa.Table) -> None:
    assert _values(out, "conv_rate") == [c[2] for c in CASES]
    assert _values(out, "trips") == [c[3] for c in CASES]
    assert _values(out, "rating") == [c[4] for c in CASES]


def _versions(platform: Platform) -> list[Path]:
    """Every index version folder on disk (one per slot when nothing is stale)."""
    root = index_root(platform.settings)
    return sorted(v for slot in root.iterdir() for v in slot.iterdir()) if root.exists() else []


def _retrieve(platform: Platform) -> pa.Table:
    return platform.caller().call(get_historical_features, entity_df=entity_frame(), features=FEATURES)  # type: ignore[no-any-return]


def test_apply_builds_the_indexes_and_keeps_them_on_disk(platform: Platform, tmp_path: Path) -> None:
    setup_repo(platform, tmp_path)
    versions = _versions(platform)
    assert len(versions) == 2  # driver_stats and driver_daily, one version each
    for folder in versions:
        assert {p.name for p in folder.iterdir()} >= {"data.arrow", "meta.json"}
    assert len(index_cache.indexes()) == 2  # and in memory, for this process


def test_a_fresh_process_reads_the_index_and_does_not_build_it(platform: Platform, tmp_path: Path) -> None:
    setup_repo(platform, tmp_path)
    for folder in _versions(platform):  # a mark that only the files on disk carry
        meta = json.loads((folder / "meta.json").read_text())
        (folder / "meta.json").write_text(json.dumps({**meta, "built_seconds": 12345.0}))
    index_cache.clear()  # as a fresh process
    _expected_ok(_retrieve(platform))
    assert [i.built_seconds for i in index_cache.indexes()] == [12345.0, 12345.0]  # read, not rebuilt


def test_a_new_source_version_builds_a_new_index_and_drops_the_old(platform: Platform, tmp_path: Path) -> None:
    repo = setup_repo(platform, tmp_path)
    before = _versions(platform)
    _expected_ok(_retrieve(platform))
    changed = driver_stats_rows()
    changed = changed.set_column(3, "conv_rate", pa.array([v * 10 for v in changed.column("conv_rate").to_pylist()]))
    part = Path(repo["stats_uri"]) / "part-0.parquet"
    mtime = part.stat().st_mtime_ns
    pq.write_table(changed, part)
    os.utime(part, ns=(mtime + 1_000_000_000, mtime + 1_000_000_000))  # a new version, whatever the clock
    index_cache.clear()  # a fresh process, which finds the old version's index on disk
    out = _retrieve(platform)
    assert _values(out, "conv_rate") == [None if c[2] is None else pytest.approx(c[2] * 10) for c in CASES]
    assert _values(out, "rating") == [c[4] for c in CASES]  # the other view's index was reused
    after = _versions(platform)
    assert len(after) == 2 and len(set(after) - set(before)) == 1  # the stale version is gone


def test_index_files_that_do_not_read_back_are_rebuilt(platform: Platform, tmp_path: Path) -> None:
    setup_repo(platform, tmp_path)
    for folder in _versions(platform):
        (folder / "data.arrow").write_bytes(b"not arrow")
    index_cache.clear()
    _expected_ok(_retrieve(platform))
    index_cache.clear()
    meta = _versions(platform)[0] / "meta.json"
    meta.write_text(meta.read_text().replace('"key": [', '"key": ["another source", '))
    _expected_ok(_retrieve(platform))  # an index written for another key is not taken


@pytest.mark.parametrize("kind", ["parquet", "delta", "dataset"])
def test_the_index_read_from_disk_answers_every_boundary_case(platform: Platform, tmp_path: Path, kind: str) -> None:
    setup_repo(platform, tmp_path, kind)
    in_memory = _retrieve(platform)
    index_cache.clear()
    from_disk = _retrieve(platform)
    _expected_ok(from_disk)
    assert from_disk.equals(in_memory)


def test_materialize_reads_the_index_on_disk_with_the_same_result(online_platform: Platform, tmp_path: Path) -> None:
    platform = online_platform
    platform.clock_state["now"] = T(16)  # type: ignore[attr-defined]
    setup_repo(platform, tmp_path)
    caller = platform.caller()
    rows = [{"driver_id": d} for d in (1, 2, 3)]
    index_cache.clear()  # a fresh process: the indexes apply wrote are on disk only
    from_index = caller.call(materialize, start=None, end=T(23))
    got_index = caller.call(get_online_features, entity_rows=rows, features=FEATURES)
    assert got_index.features == {"conv_rate": [0.30, None, None], "trips": [4, None, None], "rating": [4.0, 3.0, None]}
    assert got_index.statuses["conv_rate"] == ["present", "expired", "not_found"]
    with platform.context() as ctx:  # forget the online values and every index
        for w in from_index.writes:
            store_of(ctx).drop(table_name(w.view, _find(ctx, "feature_view", w.view).id))
    shutil.rmtree(index_root(platform.settings))
    index_cache.clear()
    assert (
        caller.call(get_online_features, entity_rows=rows, features=FEATURES).statuses["conv_rate"] == ["not_found"] * 3
    )
    from_source = caller.call(materialize, start=None, end=T(23))  # straight from the sources
    assert caller.call(get_online_features, entity_rows=rows, features=FEATURES).model_dump() == got_index.model_dump()
    summary = [(w.view, w.rows_read, w.entities_written, w.max_event_ts) for w in from_source.writes]
    assert summary == [(w.view, w.rows_read, w.entities_written, w.max_event_ts) for w in from_index.writes]


def test_take_rows_lays_nulls_over_every_column_type() -> None:
    table = pa.table(
        {
            "f": pa.array([0.5, 1.5, 2.5, 3.5]),
            "i": pa.array([1, None, 3, 4], pa.int64()),  # a column with nulls of its own
            "s": pa.array(["a", "bb", "", "dddd"]),
            "b": pa.array([True, False, True, False]),
            "t": pa.array([1, 2, 3, 4], pa.timestamp("us")),
        }
    )
    rows = np.array([3, 1, 0, 2, 1], dtype=np.int64)
    ok = np.array([True, True, False, True, False])
    got = take_rows(table, rows, ok)
    for name, arr in zip(table.column_names, got, strict=True):
        source = table.column(name).to_pylist()
        assert arr.to_pylist() == [source[r] if k else None for r, k in zip(rows, ok, strict=True)], name
        arr.validate(full=True)
    every = take_rows(table, rows, np.ones(5, dtype=bool))
    assert every[0].to_pylist() == [3.5, 1.5, 0.5, 2.5, 1.5] and every[0].null_count == 0


@pytest.mark.parametrize("keys", [["k"], ["name"], ["k", "name"]])
def test_an_index_reads_back_as_it_was_written(tmp_path: Path, keys: list[str]) -> None:
    """Integer keys (positions kept), string keys (the distinct keys kept), composite keys (no probe)."""
    import pyarrow.dataset as pads

    from plinth.features.index import build
    from plinth.features.index_files import load_index, save_index

    ts = pa.timestamp("us", tz="UTC")
    src = pa.table(
        {
            "k": pa.array([3, 1, 3, 2, 1], pa.int64()),
            "name": pa.array(["c", "a", "c", "b", "a"]),
            "t": pa.array([T(1), T(2), T(1), T(3), T(4)], ts),
            "v": pa.array([0.1, 0.2, 0.3, None, 0.5]),
        }
    )
    pq.write_table(src, tmp_path / "src.parquet")
    built = build(pads.dataset(tmp_path / "src.parquet"), keys, "t", None, {"v": "float64"})
    built.source_ref = "parquet:src"
    key = ("parquet:abc", (tuple(keys), "t", None, (("v", "float64"),)))
    root = tmp_path / "indexes"
    assert save_index(root, "src", key, built) is not None
    back = load_index(root, "src", key)
    assert back is not None and back.source_ref == "parquet:src"
    assert back.table.equals(built.table) and back.table.num_rows == 4  # (3, T(1)) twice: one row
    assert (back.rows is None) == (built.rows is None)
    assert (back.probe is None) == (built.probe is None) == (len(keys) > 1)
    if built.probe is not None:
        assert back.probe is not None
        assert np.array_equal(back.probe.packed, built.probe.packed)
        fields = ("width", "tmin", "step", "kmin", "kmax")
        assert [getattr(back.probe, f) for f in fields] == [getattr(built.probe, f) for f in fields]
        assert (back.probe.unique is None) == (keys == ["k"])
        if back.probe.unique is not None:
            assert back.probe.unique.to_pylist() == ["a", "b", "c"]
    assert load_index(root, "src", ("parquet:other", key[1])) is None  # another source version: none


def test_a_source_without_rows_answers_nulls_of_the_declared_types(platform: Platform, tmp_path: Path) -> None:
    from features_support import definitions

    from plinth.features import service as svc

    empty = driver_stats_rows().slice(0, 0)
    (tmp_path / "empty").mkdir()
    pq.write_table(empty, tmp_path / "empty" / "part-0.parquet")
    repo = setup_repo(platform, tmp_path)
    defs = definitions(str(tmp_path / "empty"), repo["daily_uri"])
    platform.caller().call(svc.apply, objects=[defs["driver"].to_spec(), defs["stats"].to_spec()])
    for _ in range(2):  # built at apply, then read from disk
        out = _retrieve(platform)
        assert out.column("conv_rate").null_count == out.num_rows == len(CASES)
        assert out.schema.field("trips").type == pa.int64()
        assert _values(out, "rating") == [c[4] for c in CASES]
        index_cache.clear()

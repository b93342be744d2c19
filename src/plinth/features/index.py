"""Per-view indexes of the offline engine, and the vectorized point-in-time probe.

An index is a view's source reduced to what a point-in-time join needs: the join keys,
the event time (UTC microseconds) and the declared features, one row per (keys, event
time) — the newest ``created`` wins a tie — sorted by keys then event time. It is built
once per source version (a new dataset version, Delta commit or Parquet file makes a new
one), at ``apply`` or on first use, and cached in memory, least recently used dropped
beyond a byte budget, and on disk (:mod:`plinth.features.index_files`), where a fresh
process finds it.

For a single join key (integer or string) the index also carries a *probe*: every row's
key rank and event time packed in one sorted int64 array. Finding, for each entity row,
the newest index row with the same key and ``event time <= entity time`` is then one
``searchsorted`` over that array: an ASOF join done by binary search, with no sort per
query and no Python per row. Composite keys, and key ranges too wide to pack, are joined
by DuckDB's ``ASOF JOIN`` instead (:mod:`plinth.features.offline`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plinth.core.context import Context
from plinth.features.index_files import index_root, load_index, save_index
from plinth.features.service import ViewPlan

__all__ = [
    "Probe",
    "ViewIndex",
    "build_after_commit",
    "cached_index",
    "in_threads",
    "index_cache",
    "probe",
    "view_index",
    "view_indexes",
]

INDEX_CACHE_BYTES = 2 << 30
TS = "__plinth_ts"
CREATED = "__plinth_created"
_PACK_LIMIT = 1 << 62
_SCAN_BATCH = 1 << 24
log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass
class Probe:
    """``packed`` = rank * width + (ts - tmin) // step per index row, ascending. A key's rank is
    its offset from ``kmin`` (integer keys) or its position in ``unique`` (string keys); ``step``
    divides every ``ts - tmin`` (whole seconds pack a million times tighter than microseconds)."""

    packed: np.ndarray
    width: int
    tmin: int
    unique: pa.Array | None = None
    kmin: int = 0
    kmax: int = -1
    step: int = 1

    def steps(self, when: Any) -> Any:
        """Entity times (us) as index time steps: ``ts <= when`` exactly when ``steps(ts) <= steps(when)``."""
        return np.clip(np.floor_divide(np.asarray(when) - self.tmin, self.step), -1, self.width - 2)

    def times(self, positions: Any) -> np.ndarray:
        """The event times (us) of index rows, from their packed values."""
        return (self.packed[positions] % self.width) * self.step + self.tmin  # type: ignore[no-any-return]

    def ranks(self, key: Any) -> np.ndarray:
        """Each entity key's rank, or -1 for a key the index does not hold."""
        if self.unique is None:
            values = key.cast(pa.int64(), safe=False)
            known = values.is_valid().to_numpy(zero_copy_only=False)
            offsets = values.fill_null(self.kmin - 1).to_numpy(zero_copy_only=False).astype(np.int64) - self.kmin
            inside = known & (offsets >= 0) & (offsets <= self.kmax - self.kmin)
            return np.where(inside, offsets, -1)
        if key.type != self.unique.type:
            key = key.cast(self.unique.type)
        found = pc.index_in(key, value_set=self.unique)
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)  # type: ignore[no-any-return]


@dataclass
class ViewIndex:
    """``data``: keys..., TS (timestamp[us], naive UTC), features... Without ``rows`` it holds the
    index rows in index order; with ``rows``, the source's rows as read and ``rows`` the positions
    of the index rows in index order (a query gathers only the rows it answers with)."""

    data: pa.Table
    source_ref: str
    built_seconds: float
    probe: Probe | None
    rows: np.ndarray | None = None
    _table: pa.Table | None = field(default=None, repr=False)

    @property
    def table(self) -> pa.Table:
        """The index rows in index order (sorted by keys, then event time)."""
        if self.rows is None:
            return self.data
        if self._table is None:
            self._table = self.data.take(pa.array(self.rows)).combine_chunks()
        return self._table

    def data_rows(self, positions: np.ndarray) -> np.ndarray:
        """Positions in ``data`` of index rows given by their positions in index order."""
        return positions if self.rows is None else self.rows[positions]

    @property
    def nbytes(self) -> int:
        extra = (self.probe.packed.nbytes if self.probe else 0) + (self.rows.nbytes if self.rows is not None else 0)
        return int(self.data.nbytes + extra + (self._table.nbytes if self._table is not None else 0))


class _IndexCache:
    def __init__(self, budget: int = INDEX_CACHE_BYTES) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[Any, ...], ViewIndex] = OrderedDict()
        self._lock = threading.Lock()
        self._building: dict[tuple[Any, ...], threading.Lock] = {}

    def get(self, key: tuple[Any, ...]) -> ViewIndex | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[Any, ...], value: ViewIndex) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(v.nbytes for v in self._items.values()) > self.budget:
                old, _ = self._items.popitem(last=False)
                self._building.pop(old, None)

    def lock_for(self, key: tuple[Any, ...]) -> threading.Lock:
        with self._lock:
            return self._building.setdefault(key, threading.Lock())

    def indexes(self) -> list[ViewIndex]:
        """The indexes held now, least recently used first."""
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._building.clear()


index_cache = _IndexCache()


def open_view_source(ctx: Context, view: ViewPlan) -> tuple[Any, tuple[Any, ...]]:
    """The view's opened source and the key of its index in the cache."""
    from plinth.features.service import sub_context
    from plinth.features.sources import open_source

    src = view.spec["source"]
    with sub_context(ctx) as sub:
        opened = open_source(sub, src["uri"])
    layout = (
        tuple(view.join_keys),
        src["timestamp_field"],
        src.get("created_field"),
        tuple(sorted(view.dtypes.items())),
    )
    return opened, (opened.cache_key, layout)


def check_view_source(opened: Any, view: ViewPlan) -> None:
    from plinth.features.sources import check_schema

    src = view.spec["source"]
    check_schema(
        opened.schema,
        what=f"source {src['uri']!r} of feature view {view.name!r}",
        fields=view.dtypes,
        keys=view.join_keys,
        timestamp_field=src["timestamp_field"],
        created_field=src.get("created_field"),
    )


def view_index(ctx: Context, view: ViewPlan) -> ViewIndex:
    """The view's index for its source's current version: built on first use, then reused."""
    return view_indexes(ctx, [view])[0]


def view_indexes(ctx: Context, views: list[ViewPlan]) -> list[ViewIndex]:
    """The indexes of several views; those not cached are built side by side in threads (the
    Parquet reads and the sorts release the GIL). Sources are opened first, in this thread."""
    opened = [open_view_source(ctx, v) for v in views]
    found: list[ViewIndex | None] = [cached_index(ctx, *o) for o in opened]
    missing = [i for i, f in enumerate(found) if f is None]
    for i in missing:
        check_view_source(opened[i][0], views[i])

    root = index_root(ctx.settings)
    built = in_threads(lambda i: _cached_build(root, opened[i][0], opened[i][1], views[i]), missing)
    for i, index in zip(missing, built, strict=True):
        found[i] = index
    return [f for f in found if f is not None]


def build_after_commit(ctx: Context, views: list[ViewPlan]) -> None:
    """Once ``ctx``'s transaction commits, build (or find) the views' indexes and keep them on
    disk, so that the first retrieval, in this process or a fresh one, reads them ready-made.
    A source that cannot be read now is left for the retrieval to report."""
    from sqlalchemy import event

    def build_now(_session: Any) -> None:
        try:
            view_indexes(ctx, views)
        except Exception as exc:  # noqa: BLE001 - an optimisation: the retrieval builds and reports
            log.warning("feature indexes were not built after apply: %s", exc)

    event.listen(ctx.session, "after_commit", build_now, once=True)


def in_threads(fn: Callable[[_T], _R], items: list[_T]) -> list[_R]:
    """``fn`` over ``items``, side by side in threads when there are several: Arrow's reads and
    NumPy's sorts release the GIL, so two views take about the time of one on two cores."""
    if len(items) < 2:
        return [fn(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items))


def cached_index(ctx: Context, opened: Any, key: tuple[Any, ...]) -> ViewIndex | None:
    """The index of this source version from memory, else from disk (then kept in memory)."""
    found = index_cache.get(key)
    if found is None:
        found = load_index(index_root(ctx.settings), opened.uri, key)
        if found is not None:
            index_cache.put(key, found)
    return found


def _cached_build(root: Path, opened: Any, key: tuple[Any, ...], view: ViewPlan) -> ViewIndex:
    found = index_cache.get(key)
    if found is not None:
        return found
    with index_cache.lock_for(key):
        found = index_cache.get(key) or load_index(root, opened.uri, key)
        if found is not None:
            index_cache.put(key, found)
            return found
        src = view.spec["source"]
        built = build(opened.dataset, view.join_keys, src["timestamp_field"], src.get("created_field"), view.dtypes)
        built.source_ref = opened.ref
        index_cache.put(key, built)
        save_index(root, opened.uri, key, built)
        return built


def utc_micros(col: Any) -> Any:
    """A timestamp or date column as naive UTC microseconds (naive input is UTC already)."""
    t = col.type
    if pa.types.is_date(t):
        return col.cast(pa.timestamp("us"))
    if t.tz is not None:
        return col.cast(pa.timestamp("us", tz="UTC"), safe=False).cast(pa.timestamp("us"))
    return col.cast(pa.timestamp("us"), safe=False)


def feature_array(col: Any, dtype: str) -> Any:
    from plinth.features.definitions import DTYPES

    if dtype == "timestamp":
        return utc_micros(col)
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    return col.cast(pa.type_for_alias(DTYPES[dtype]))


def _scan(dataset: Any, keys: list[str], ts: str, created: str | None, dtypes: dict[str, str]) -> pa.Table:
    """The needed columns (projection pushed down), rows without keys or event time dropped."""
    needed = list(dict.fromkeys([*keys, ts, *([created] if created else []), *dtypes]))
    raw = dataset.to_table(columns=needed, batch_size=_SCAN_BATCH)  # a chunk per row group: no copies to join them
    valid = None
    for col in [*keys, ts]:
        if raw.column(col).null_count:  # most sources have none: no filter pass
            cond = pc.is_valid(raw.column(col))
            valid = cond if valid is None else pc.and_(valid, cond)
    return raw if valid is None else raw.filter(valid)


def build(dataset: Any, keys: list[str], ts: str, created: str | None, dtypes: dict[str, str]) -> ViewIndex:
    """Scan the source (columns pushed down), deduplicate per (keys, event time), sort."""
    started = time.perf_counter()
    raw = _scan(dataset, keys, ts, created, dtypes)
    if len(keys) == 1 and pa.types.is_integer(raw.schema.field(keys[0]).type) and raw.num_rows:
        packing = _pack(raw, keys[0], ts, created)
        if packing is not None:  # an integer key: the rows stay as read, the order is an array
            data = _index_columns(raw, keys, packing.t, dtypes)
            rows = packing.order[packing.pick]
            return ViewIndex(data, "", time.perf_counter() - started, packing.probe, rows)
    table = _build_sorted(raw, keys, ts, created, dtypes)
    return ViewIndex(table, "", time.perf_counter() - started, make_probe(table, keys))


@dataclass
class _Packing:
    t: np.ndarray  # event times (us) of the raw rows
    order: np.ndarray  # raw rows sorted by (key, ts), as read within a tie
    pick: np.ndarray  # positions in ``order`` of one row per (key, ts): the first with the newest created
    probe: Probe


def _time_steps(t: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """(t - tmin) // step, tmin, step, width: ``step`` is the largest that divides every ``t - tmin``."""
    tmin, tmax = int(t.min()), int(t.max())
    rel = t - tmin
    step = int(np.gcd.reduce(rel)) or 1
    if step > 1:
        np.floor_divide(rel, step, out=rel)
    return rel, tmin, step, (tmax - tmin) // step + 2


def _sort_order(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(order, packed[order]), ties kept as read. The row number rides in the low bits when it
    fits, so that a value sort (several times faster than ``argsort``) gives the order."""
    n = len(packed)
    if n == 0:
        return np.zeros(0, np.int64), packed
    row_bits = max(n - 1, 1).bit_length()
    if int(packed.max()).bit_length() + row_bits <= 62:
        both = np.left_shift(packed, row_bits)
        both |= np.arange(n, dtype=np.int64)
        both.sort()
        order = both & ((1 << row_bits) - 1)
        np.right_shift(both, row_bits, out=both)
        return order, both
    order = np.argsort(packed, kind="stable")
    return order, packed[order]


def _pack(raw: pa.Table, key: str, ts: str, created: str | None) -> _Packing | None:
    k = raw.column(key).cast(pa.int64()).to_numpy()
    t = utc_micros(raw.column(ts)).cast(pa.int64()).to_numpy()
    kmin, kmax = int(k.min()), int(k.max())
    rel, tmin, step, width = _time_steps(t)
    if (kmax - kmin + 1) * width >= _PACK_LIMIT:
        return None
    packed = k - kmin
    packed *= width
    packed += rel
    order, ordered = _sort_order(packed)
    first = np.ones(len(ordered), dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    pick = np.flatnonzero(first)
    if created and len(pick) < len(ordered):
        _newest_created(raw.column(created), order, first, pick)
    made_probe = Probe(ordered[pick], width, tmin, kmin=kmin, kmax=kmax, step=step)
    return _Packing(t, order, pick, made_probe)


def _newest_created(created: Any, order: np.ndarray, first: np.ndarray, pick: np.ndarray) -> None:
    """Within each run of equal (key, ts) longer than one row, move ``pick`` to the run's first
    row with the newest created (a missing created loses). Only those runs' rows are read."""
    member = ~first  # rows that continue a run, and (below) the rows that start one that continues
    member[:-1] |= member[1:]
    rows = np.flatnonzero(member)  # positions in ``order`` of rows in shared runs
    starts = first[rows]
    made = utc_micros(created).cast(pa.int64()).fill_null(-(1 << 62)).to_numpy()[order[rows]]
    run = np.cumsum(starts) - 1
    newest_made = np.maximum.reduceat(made, np.flatnonzero(starts))
    candidates = np.flatnonzero(made == newest_made[run])
    keep = np.ones(len(candidates), dtype=bool)
    keep[1:] = run[candidates[1:]] != run[candidates[:-1]]
    pick[np.searchsorted(pick, rows[starts])] = rows[candidates[keep]]


def _index_columns(raw: pa.Table, keys: list[str], t: np.ndarray, dtypes: dict[str, str]) -> pa.Table:
    """The index's columns of ``raw`` (TS from its event times in us), rows as they are."""
    arrays: dict[str, Any] = {k: raw.column(k) for k in keys}
    arrays[TS] = pa.array(t, pa.timestamp("us"))
    for name, dtype in dtypes.items():
        arrays[name] = feature_array(raw.column(name), dtype)
    return pa.table(arrays).combine_chunks()  # one chunk: a take from many chunks concatenates them first


def _build_sorted(raw: pa.Table, keys: list[str], ts: str, created: str | None, dtypes: dict[str, str]) -> pa.Table:
    arrays: dict[str, Any] = {k: raw.column(k) for k in keys}
    arrays[TS] = utc_micros(raw.column(ts))
    if created:  # a missing created time loses every tie
        arrays[CREATED] = utc_micros(raw.column(created)).fill_null(pa.scalar(-(1 << 62), pa.timestamp("us")))
    for name, dtype in dtypes.items():
        arrays[name] = feature_array(raw.column(name), dtype)
    table = pa.table(arrays)
    order = [(k, "ascending") for k in keys] + [(TS, "ascending")]
    if created:
        order.append((CREATED, "descending"))
    table = table.sort_by(order).combine_chunks()
    n = table.num_rows
    if n > 1:
        differs = None
        for col in [*keys, TS]:
            arr = table.column(col).combine_chunks()
            d = pc.not_equal(arr.slice(1), arr.slice(0, n - 1))
            differs = d if differs is None else pc.or_(differs, d)
        table = table.filter(pa.concat_arrays([pa.array([True]), differs]))
    if created:
        table = table.drop_columns([CREATED])
    return table.combine_chunks()


def make_probe(table: pa.Table, keys: list[str]) -> Probe | None:
    """The packed (key rank, event time) array of a sorted index, for a single key."""
    if len(keys) != 1:
        return None
    key = table.column(keys[0]).combine_chunks()
    t = key.type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
        return None
    n = table.num_rows
    ts = table.column(TS).cast(pa.int64()).to_numpy()
    if n == 0:
        return Probe(np.zeros(0, np.int64), 1, 0, unique=key)
    new_key = np.ones(n, dtype=bool)
    if n > 1:
        new_key[1:] = pc.not_equal(key.slice(1), key.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    ranks = np.cumsum(new_key, dtype=np.int64) - 1
    tmin, tmax = int(ts.min()), int(ts.max())
    width = tmax - tmin + 2
    if (int(ranks[-1]) + 1) * width >= _PACK_LIMIT:
        return None
    return Probe(ranks * width + (ts - tmin), width, tmin, unique=key.filter(pa.array(new_key)))


def probe(
    index: ViewIndex, key: Any, when: np.ndarray, known: np.ndarray, ttl_us: int | None, order: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each entity row, the row of ``index.data`` to take and whether it counts (False:
    nothing in the window); and the order that sorts the entity rows by (key, time).

    ``when`` holds the entity timestamps as UTC microseconds, ``known`` whether each is
    not null. The newest row with the same key and ``ts <= when`` is found by binary
    search; it counts if ``ts >= when - ttl`` (both boundaries inside). Ranks and time
    steps grow with key and time in every index, so the ``order`` one view's probe returns
    sorts the next view's needles too (pass it on: one sort per call, not one per view).
    """
    p = index.probe
    assert p is not None
    n = len(when)
    if len(p.packed) == 0:
        return np.zeros(n, np.int64), np.zeros(n, bool), order if order is not None else np.arange(n)
    ranks = p.ranks(key)
    held = ranks >= 0
    needles = np.where(held, ranks, 0) * p.width + p.steps(when) + 1  # >= 0: sortable as values
    if order is None:  # sorted needles walk the index in order: several times faster
        order, ordered = _sort_order(needles)
    else:
        ordered = needles[order]
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.searchsorted(p.packed, ordered - 1, side="right")
    pos -= 1
    safe = np.clip(pos, 0, None)
    hit = p.packed[safe]
    ok = known & held & (pos >= 0) & (hit // p.width == ranks)
    if ttl_us is not None:
        ok &= (hit % p.width) * p.step + p.tmin >= when - ttl_us
    return index.data_rows(safe), ok, order


def take_rows(table: pa.Table, rows: np.ndarray, ok: np.ndarray) -> list[pa.Array]:
    """``table``'s columns at ``rows``, null where ``ok`` is False. Arrow's take with a
    masked index is several times slower than without: take every row, then lay one
    validity bitmap over the columns that have no nulls of their own."""
    if not ok.any():  # nothing to take (an empty index has no row to point at)
        return [pa.nulls(len(ok), t) for t in table.schema.types]
    taken = table.take(pa.array(rows))
    arrays = [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in taken.columns]
    missing = len(ok) - int(np.count_nonzero(ok))
    if missing == 0:
        return arrays
    bitmap = pa.py_buffer(np.packbits(ok, bitorder="little"))
    out = []
    for arr in arrays:
        t = arr.type
        plain = not (pa.types.is_nested(t) or pa.types.is_dictionary(t) or pa.types.is_null(t))
        if plain and arr.null_count == 0 and arr.offset == 0:
            out.append(pa.Array.from_buffers(t, len(arr), [bitmap, *arr.buffers()[1:]], null_count=missing))
        else:
            out.append(pc.if_else(pa.array(ok), arr, pa.nulls(len(arr), t)))
    return out


def newest(index: ViewIndex, keys: list[str], start_us: int | None, end_us: int) -> tuple[pa.Table, int]:
    """Per entity, the newest index row with ``start <= ts <= end``; and the rows in that window."""
    p = index.probe
    if p is None or len(p.packed) == 0:
        ts = index.table.column(TS).cast(pa.int64()).to_numpy()
        return _newest_by_duckdb(index.table, keys, start_us, end_us), _count_between(ts, start_us, end_us)
    ts = p.times(slice(None))
    rows = _count_between(ts, start_us, end_us)
    held = p.packed // p.width
    starts = np.ones(len(held), dtype=bool)
    starts[1:] = held[1:] != held[:-1]
    ranks = held[starts]
    pos = np.searchsorted(p.packed, ranks * p.width + p.steps(end_us), side="right") - 1
    safe = np.clip(pos, 0, None)
    ok = (pos >= 0) & (p.packed[safe] // p.width == ranks)
    if start_us is not None:
        ok &= ts[safe] >= start_us
    return index.data.take(pa.array(index.data_rows(safe[ok]))), rows


def _latest_per_key(raw: pa.Table, key: str, ts: str, created: str | None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """For integer keys of a dense enough range, with no sort of the rows: the rows holding each
    key's newest event time (newest created, then first as read, deciding a tie), every row's
    event time (us), and the number of distinct (key, event time)."""
    k = raw.column(key).cast(pa.int64()).to_numpy()
    t = utc_micros(raw.column(ts)).cast(pa.int64()).to_numpy()
    kmin, kmax = int(k.min()), int(k.max())
    rel, _tmin, _step, width = _time_steps(t)
    if kmax - kmin >= 4 * len(k) + 1024 or (kmax - kmin + 1) * width >= _PACK_LIMIT:
        return None
    rank = k - kmin
    newest_t = np.full(kmax - kmin + 1, np.iinfo(np.int64).min)
    np.maximum.at(newest_t, rank, t)
    rows = np.flatnonzero(t == newest_t[rank])  # a few rows per key: the tie-break is cheap
    if created:
        made = utc_micros(raw.column(created)).cast(pa.int64()).fill_null(-(1 << 62)).to_numpy()[rows]
        order = np.lexsort((rows, -made, rank[rows]))
    else:
        order = np.lexsort((rows, rank[rows]))
    held = rank[rows][order]
    first = np.ones(len(held), dtype=bool)
    np.not_equal(held[1:], held[:-1], out=first[1:])
    packed = np.sort(rank * width + rel)
    return rows[order][first], t, 1 + int(np.count_nonzero(packed[1:] != packed[:-1]))


def _count_between(ts: np.ndarray, start_us: int | None, end_us: int) -> int:
    inside = ts <= end_us
    if start_us is not None:
        inside &= ts >= start_us
    return int(np.count_nonzero(inside))


def _newest_by_duckdb(table: pa.Table, keys: list[str], start_us: int | None, end_us: int) -> pa.Table:
    from plinth.features.offline import connect, q

    con = connect()
    try:
        con.register("idx", table)
        where = f"epoch_us({q(TS)}) <= {int(end_us)}"
        if start_us is not None:
            where += f" AND epoch_us({q(TS)}) >= {int(start_us)}"
        order = ", ".join(q(k) for k in keys)
        return con.sql(  # type: ignore[no-any-return]
            f"SELECT DISTINCT ON ({order}) * FROM idx WHERE {where} ORDER BY {order}, {q(TS)} DESC"
        ).to_arrow_table()
    finally:
        con.close()


def newest_from_source(
    dataset: Any,
    keys: list[str],
    ts: str,
    created: str | None,
    dtypes: dict[str, str],
    start_us: int | None,
    end_us: int,
) -> tuple[pa.Table, int]:
    """What :func:`newest` answers, straight from the source when no index is cached:
    hash aggregations (newest event time per entity, then newest created), no sort.
    The row count is of distinct (keys, event time) in the window, as the index counts."""
    raw = _scan(dataset, keys, ts, created, dtypes)
    when = utc_micros(raw.column(ts)).cast(pa.int64()).to_numpy()
    keep = when <= end_us
    if start_us is not None:
        keep &= when >= start_us
    if not keep.all():
        raw, when = raw.filter(pa.array(keep)), when[keep]
    if raw.num_rows == 0:
        return _build_sorted(raw, keys, ts, created, dtypes), 0
    if len(keys) == 1 and pa.types.is_integer(raw.schema.field(keys[0]).type):
        latest = _latest_per_key(raw, keys[0], ts, created)
        if latest is not None:
            rows, t, count = latest
            return _index_columns(raw.take(pa.array(rows)), keys, t[rows], dtypes), count
    if created:
        made = utc_micros(raw.column(created)).cast(pa.int64()).fill_null(-(1 << 62)).to_numpy()
    else:
        made = np.zeros(raw.num_rows, dtype=np.int64)
    base = pa.table({**{k: raw.column(k) for k in keys}, "__ts": when, "__cr": made, "__i": np.arange(raw.num_rows)})
    rows = base.group_by([*keys, "__ts"]).aggregate([]).num_rows  # as the index counts: one per (keys, ts)
    latest = base.group_by(keys).aggregate([("__ts", "max")])
    base = base.join(latest, keys=[*keys, "__ts"], right_keys=[*keys, "__ts_max"], join_type="inner")
    newest_made = base.group_by(keys).aggregate([("__cr", "max")])
    base = base.join(newest_made, keys=[*keys, "__cr"], right_keys=[*keys, "__cr_max"], join_type="inner")
    picked = raw.take(base.group_by(keys).aggregate([("__i", "min")]).column("__i_min"))
    arrays: dict[str, Any] = {k: picked.column(k) for k in keys}
    arrays[TS] = utc_micros(picked.column(ts))
    for name, dtype in dtypes.items():
        arrays[name] = feature_array(picked.column(name), dtype)
    return pa.table(arrays), rows

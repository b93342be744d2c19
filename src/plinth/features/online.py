"""Online serving: materialize views into the online store, look values up, push fresh rows.

* ``materialize(start, end)`` copies, for each online view, the newest row per entity with
  an event timestamp in ``[start, end]`` into the online store; ``materialize_incremental``
  starts where the view's last materialization ended.
* ``get_online_features`` answers values with their event timestamps; a value older than
  its view's ttl (now - ttl > event time) is served as null with status ``expired``.
* ``push`` checks the rows against the view's schema, appends them to the offline source,
  then writes the newest per entity online. A bad row writes nothing anywhere.

The lookup path keeps resolved definitions in memory (per project and feature list) so
that a lookup touches the online store only; an ``apply`` in this process drops that
cache at once, one in another process is seen within ``CACHE_SECONDS``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import select

from plinth.core.context import Context
from plinth.core.errors import InvalidInput
from plinth.core.ids import new_id
from plinth.features import schemas as s
from plinth.features import service as registry
from plinth.features.online_store import OnlineStore, Row, masked_url, open_online_store
from plinth.features.service import Resolution, ViewPlan, sub_context
from plinth.features.tables import FeatureDefinition, FeatureOnlineWrite

__all__ = ["get_online_features", "lookup_context", "materialize", "materialize_incremental", "push"]

CACHE_SECONDS = 10.0
WRITE_BATCH = 20_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
KEY_SEP = "\x1f"


def store_of(ctx: Context) -> OnlineStore:
    return open_online_store(ctx.settings.online_store)


def table_name(view: str, view_id: str) -> str:
    """A view's table in the online store: named by its definition's id, unique per installation
    (two platforms sharing one Redis never mix), with the name for people who look."""
    return f"{view}.{view_id}"


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    if 0 <= value < _FLOAT_EXACT_US:  # a float's rounding error stays under half a microsecond
        return _fromtimestamp(value / 1e6, UTC)
    return EPOCH + timedelta(microseconds=value)


_FLOAT_EXACT_US = 4_000_000_000_000_000  # until 2096
_fromtimestamp = datetime.fromtimestamp
_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()


def _utc(moment: Any, what: str) -> datetime:
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{what} {moment!r} is not an ISO-8601 time", field=what) from None
    if hasattr(moment, "to_pydatetime"):
        moment = moment.to_pydatetime()
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{what} must be a datetime", field=what)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- key and value encoding ---------------------------------------------------------------------
def encode_keys(columns: list[Any]) -> list[str]:
    """Entity keys as text, the same way for writes (Arrow columns) and lookups."""
    import pyarrow.compute as pc

    texts = [pc.cast(c, pa.string()).to_pylist() for c in columns]
    if len(texts) == 1:
        return texts[0]  # type: ignore[no-any-return]
    return [KEY_SEP.join("" if v is None else v for v in parts) for parts in zip(*texts, strict=True)]


def _lookup_key(values: list[Any], types: list[str], keys: list[str], view: str) -> str:
    parts = []
    for value, typ, key in zip(values, types, keys, strict=True):
        if typ.startswith(("int", "uint")):
            if isinstance(value, bool) or not isinstance(value, int):
                try:
                    if isinstance(value, float) and not value.is_integer():
                        raise ValueError
                    value = int(value)
                except (TypeError, ValueError):
                    raise InvalidInput(
                        f"join key {key!r} of feature view {view!r} is {typ}; got {value!r}",
                        field="entity_rows",
                        column=key,
                    ) from None
            parts.append(str(value))
        elif typ in {"string", "large_string"}:
            if not isinstance(value, str):
                raise InvalidInput(
                    f"join key {key!r} of feature view {view!r} is a string; got {value!r}",
                    field="entity_rows",
                    column=key,
                )
            parts.append(value)
        else:
            parts.append(encode_keys([pa.array([value])])[0])
    return parts[0] if len(parts) == 1 else KEY_SEP.join(parts)


def _payload_columns(table: pa.Table, dtypes: dict[str, str]) -> pa.Table:
    """Values as JSON can hold them: timestamps as microseconds, bytes as base64."""
    for name, dtype in dtypes.items():
        col = table.column(name)
        if dtype == "timestamp":
            col = col.cast(pa.timestamp("us")).cast(pa.int64())
        elif dtype == "bytes":
            col = pa.array([None if b is None else base64.b64encode(b).decode() for b in col.to_pylist()], pa.string())
        else:
            continue
        table = table.set_column(table.column_names.index(name), name, col)
    return table


def _decode(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype == "timestamp":
        return from_us(int(value))
    if dtype == "bytes":
        return base64.b64decode(value)
    return value


def rows_for_store(table: pa.Table, keys: list[str], features: dict[str, str], created: Any = None) -> list[Row]:
    """(key, ts us, created us, JSON) rows from an Arrow table with TS (naive UTC) and the features."""
    from plinth.features.index import TS

    encoded = encode_keys([table.column(k) for k in keys])
    ts = table.column(TS).cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
    cr = (
        table.column("__plinth_created").cast(pa.timestamp("us")).cast(pa.int64()).to_pylist()
        if "__plinth_created" in table.column_names
        else [created] * table.num_rows
    )
    values = _json_rows(_payload_columns(table.select(list(features)), features))
    return [(k, t, c if c is not None else t, v) for k, t, c, v in zip(encoded, ts, cr, values, strict=True)]


def _json_rows(table: pa.Table) -> list[str]:
    """Each row as a JSON object, built a column at a time by Arrow (Python touches strings only):
    floats written shortest round-trip (integral ones with ``.0``), NaN and Infinity as Python's
    json reads them, nulls as ``null``."""
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return []
    parts: list[Any] = []
    for i, name in enumerate(table.column_names):
        parts.append(("{" if i == 0 else ",") + json.dumps(name) + ":")
        parts.append(_json_values(table.column(name).combine_chunks()))
    parts.append("}")
    return pc.binary_join_element_wise(*parts, "").to_pylist()  # type: ignore[no-any-return]


def _json_values(col: pa.Array) -> pa.Array:
    """A column's values as JSON texts."""
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out = pa.array([None if v is None else json.dumps(v) for v in col.to_pylist()], pa.string())
    elif pa.types.is_floating(t):
        out = pc.cast(col.cast(pa.float64()), pa.string())  # shortest text that reads back the same double
        integral = pc.match_substring_regex(out, r"^-?[0-9]+$")
        out = pc.if_else(integral, pc.binary_join_element_wise(out, ".0", ""), out)
        out = pc.replace_substring(pc.replace_substring(out, "nan", "NaN"), "inf", "Infinity")
    else:  # integers, booleans (true / false)
        out = pc.cast(col, pa.string())
    return out.fill_null("null")


# --- materialize --------------------------------------------------------------------------------
@dataclass
class _ViewJob:
    row_id: str
    plan: ViewPlan
    project_id: str
    start: datetime | None


def _online_views(sub: Context, views: list[str] | None) -> list[ViewPlan]:
    rows = [r for r in registry._rows(sub) if r.kind == "feature_view"]
    if views is not None:
        if isinstance(views, str) or not isinstance(views, list | tuple):
            raise InvalidInput("views must be a list of feature view names", field="views")
        by_name = {r.name: r for r in rows}
        picked = []
        for name in views:
            if name not in by_name:
                raise InvalidInput(
                    f"no feature view named {name!r}{registry.closest(name, sorted(by_name))}", field="views"
                )
            if not by_name[name].spec.get("online", True):
                raise InvalidInput(f"feature view {name!r} is not online (online=False)", field="views")
            picked.append(by_name[name])
        rows = picked
    else:
        rows = [r for r in rows if r.spec.get("online", True)]
    plans = []
    for r in rows:
        resolved = registry.resolved_of(sub, r)
        keys = resolved.get("join_keys") or registry._join_keys(sub, r.spec)
        plans.append(
            ViewPlan(
                r.name,
                r.latest_version,
                r.spec,
                keys,
                resolved.get("join_key_types", {}),
                [f["name"] for f in r.spec["schema"]],
            )
        )
    return plans


def _last_end(sub: Context, view: str) -> datetime | None:
    row = sub.session.execute(
        select(FeatureOnlineWrite.end_ts)
        .join(FeatureDefinition, FeatureDefinition.id == FeatureOnlineWrite.view_id)
        .where(
            FeatureDefinition.project_id == sub.project_id(),
            FeatureDefinition.namespace == "features",
            FeatureDefinition.name == view,
            FeatureOnlineWrite.kind == "materialize",
        )
        .order_by(FeatureOnlineWrite.end_ts.desc())
        .limit(1)
    ).scalar()
    return row


def materialize(
    ctx: Context,
    end: datetime,
    start: datetime | None = None,
    views: list[str] | None = None,
    incremental: bool = False,
) -> s.MaterializeResult:
    """Copy the newest value per entity with event time in [start, end] into the online store."""
    ctx.require("write")
    started = time.perf_counter()
    end = _utc(end, "end")
    if start is not None:
        start = _utc(start, "start")
        if start > end:
            raise InvalidInput(f"start ({start.isoformat()}) is after end ({end.isoformat()})", field="start")
    with sub_context(ctx) as sub:
        plans = _online_views(sub, views)
        project_id = sub.project_id()
        jobs = []
        for plan in plans:
            first = start
            if incremental:
                last = _last_end(sub, plan.name)
                if last is not None:
                    first = last
                elif plan.ttl_us is not None:
                    first = end - timedelta(microseconds=plan.ttl_us)
            row_id = registry._find(sub, "feature_view", plan.name).id
            jobs.append(_ViewJob(row_id, plan, project_id, first))
    store = store_of(ctx)
    found = _newest_per_view(ctx, jobs, end)  # every source checked before anything is written
    if store.concurrent_writes:  # one view's values are encoded while the store applies another's
        from plinth.features.index import in_threads

        stored = in_threads(lambda i: _store_newest(store, jobs[i], found[i][0]), list(range(len(jobs))))
    else:
        stored = [_store_newest(store, job, newest[0]) for job, newest in zip(jobs, found, strict=True)]
    writes = [
        _record_write(
            ctx, job, "materialize", store, job.start, end, rows_read, written, max_ts, source_ref, seconds + took
        )
        for job, (_t, rows_read, source_ref, seconds), (written, max_ts, took) in zip(jobs, found, stored, strict=True)
    ]
    return s.MaterializeResult(writes=writes, seconds=round(time.perf_counter() - started, 4))


def materialize_incremental(ctx: Context, end: datetime, views: list[str] | None = None) -> s.MaterializeResult:
    """Materialize from where each view's last materialization ended (or end - ttl) to ``end``."""
    return materialize(ctx, end=end, views=views, incremental=True)


def _newest_per_view(ctx: Context, jobs: list[_ViewJob], end: datetime) -> list[tuple[pa.Table, int, str, float]]:
    """Per job: the newest row per entity in its window, the index rows in the window, the source
    read, the seconds taken. From the view's index when the offline engine holds one; otherwise
    straight from the source, the views side by side in threads."""
    from plinth.features.index import (
        cached_index,
        check_view_source,
        in_threads,
        newest,
        newest_from_source,
        open_view_source,
    )

    opened = [open_view_source(ctx, job.plan) for job in jobs]
    for job, (source, key) in zip(jobs, opened, strict=True):
        if cached_index(ctx, source, key) is None:
            check_view_source(source, job.plan)

    def one(i: int) -> tuple[pa.Table, int, str, float]:
        started = time.perf_counter()
        plan, first, (source, key) = jobs[i].plan, jobs[i].start, opened[i]
        start_us = to_us(first) if first is not None else None
        index = cached_index(ctx, source, key)
        if index is not None:  # the offline engine's index of this source version: no scan at all
            table, rows_read = newest(index, plan.join_keys, start_us, to_us(end))
        else:
            src = plan.spec["source"]
            table, rows_read = newest_from_source(
                source.dataset,
                plan.join_keys,
                src["timestamp_field"],
                src.get("created_field"),
                plan.dtypes,
                start_us,
                to_us(end),
            )
        return table, rows_read, source.ref, time.perf_counter() - started

    return in_threads(one, list(range(len(jobs))))


def _store_newest(store: OnlineStore, job: _ViewJob, table: pa.Table) -> tuple[int, datetime | None, float]:
    """Write one view's newest rows online: (rows written, newest event time, seconds)."""
    from plinth.features.index import TS

    started = time.perf_counter()
    plan = job.plan
    written = 0
    for i in range(0, table.num_rows, WRITE_BATCH):
        part = table.slice(i, WRITE_BATCH)
        store.write(table_name(plan.name, job.row_id), rows_for_store(part, plan.join_keys, plan.dtypes))
        written += part.num_rows
    max_ts = None
    if table.num_rows:
        import pyarrow.compute as pc

        newest_ts = pc.max(table.column(TS)).as_py()
        max_ts = newest_ts.replace(tzinfo=UTC) if newest_ts is not None else None
    return written, max_ts, time.perf_counter() - started


def _record_write(
    ctx: Context,
    job: _ViewJob,
    kind: str,
    store: OnlineStore,
    start: datetime | None,
    end: datetime | None,
    rows_read: int,
    written: int,
    max_ts: datetime | None,
    source_ref: str,
    seconds: float,
) -> s.OnlineWriteInfo:
    with sub_context(ctx) as sub:
        row = FeatureOnlineWrite(
            id=new_id(),
            project_id=job.project_id,
            view_id=job.row_id,
            view_version=job.plan.version,
            kind=kind,
            store=masked_url(store.url)[:500],
            start_ts=start,
            end_ts=end,
            rows_read=rows_read,
            entities_written=written,
            max_event_ts=max_ts,
            source_ref=source_ref,
            seconds=round(seconds, 4),
            created_at=sub.now(),
            created_by=sub.actor.name,
        )
        sub.session.add(row)
        sub.session.flush()
        sub.emit(
            f"features.{kind}",
            f"features:/{job.plan.name}",
            {
                "version": job.plan.version,
                "start": start.isoformat() if start else None,
                "end": end.isoformat() if end else None,
                "rows": rows_read,
                "entities": written,
            },
        )
        return write_info(row, job.plan.name)


def write_info(row: FeatureOnlineWrite, view: str) -> s.OnlineWriteInfo:
    return s.OnlineWriteInfo(
        view=view,
        view_version=row.view_version,
        kind=row.kind,
        store=row.store,
        start_ts=row.start_ts,
        end_ts=row.end_ts,
        rows_read=row.rows_read,
        entities_written=row.entities_written,
        max_event_ts=row.max_event_ts,
        source_ref=row.source_ref,
        seconds=row.seconds,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# --- lookups ------------------------------------------------------------------------------------
@dataclass
class _OnlineView:
    table: str
    name: str
    join_keys: list[str]
    key_types: list[str]
    features: list[tuple[str, str, str]]  # (feature, dtype, column)
    ttl_us: int | None
    plain: bool  # every feature decodes as it is (no timestamps or bytes)

    def keys(self, columns: dict[str, list[Any]], n: int) -> list[str]:
        if n == 0:
            return []
        for key in self.join_keys:
            if key not in columns:
                raise InvalidInput(
                    f"entity_rows have no {key!r}, the join key of feature view {self.name!r}",
                    field="entity_rows",
                    column=key,
                )
        if len(self.join_keys) == 1:
            typ, key = self.key_types[0], self.join_keys[0]
            values = columns[key]
            if typ.startswith(("int", "uint")) and all(type(v) is int for v in values):
                return [str(v) for v in values]
            if typ in {"string", "large_string"} and all(type(v) is str for v in values):
                return values
            return [_lookup_key([v], self.key_types, self.join_keys, self.name) for v in values]
        cols = [columns[k] for k in self.join_keys]
        return [_lookup_key([c[i] for c in cols], self.key_types, self.join_keys, self.name) for i in range(n)]


@dataclass
class _OnlinePlan:
    views: list[_OnlineView]
    resolution: Resolution
    wanted: list[str]
    entity_keys: list[str]
    store: OnlineStore
    stores: Any
    made: float
    generation: int


_plans: dict[tuple[Any, ...], _OnlinePlan] = {}
_plans_lock = threading.Lock()


def _online_plan(
    ctx: Context, features: list[str] | None, feature_service: str | None, full_feature_names: bool
) -> _OnlinePlan:
    key = (
        id(ctx.stores),
        ctx.project,
        tuple(features) if isinstance(features, list | tuple) else features,
        feature_service,
        full_feature_names,
    )
    now = time.monotonic()
    found = _plans.get(key)
    if (
        found is not None
        and found.stores is ctx.stores
        and found.generation == registry.generation()
        and now - found.made < CACHE_SECONDS
    ):
        return found
    from plinth.features.offline import output_columns

    with sub_context(ctx) as sub:
        res = registry.resolve_features(sub, features, feature_service)
    wanted = output_columns(res, full_feature_names, [])
    columns = {(v, f): col for v, f, col in wanted}
    views = []
    for v in res.views:
        dtypes = v.dtypes
        feats = [(f, dtypes[f], columns.get((v.name, f), f"{v.name}__{f}")) for f in v.features]
        types = [v.key_types.get(k, "string") for k in v.join_keys]
        plain = all(d not in {"timestamp", "bytes"} for _f, d, _c in feats)
        views.append(_OnlineView(table_name(v.name, v.id), v.name, v.join_keys, types, feats, v.ttl_us, plain))
    plan = _OnlinePlan(
        views=views,
        resolution=res,
        wanted=[col for _v, _f, col in wanted],
        entity_keys=list(dict.fromkeys(k for v in views for k in v.join_keys)),
        store=store_of(ctx),
        stores=ctx.stores,
        made=now,
        generation=registry.generation(),
    )
    with _plans_lock:
        if len(_plans) > 1000:
            _plans.clear()
        _plans[key] = plan
    return plan


def _entity_columns(entity_rows: Any) -> tuple[dict[str, list[Any]], int]:
    if isinstance(entity_rows, dict):
        cols = {str(k): list(v) if isinstance(v, list | tuple) else [v] for k, v in entity_rows.items()}
        lengths = {len(v) for v in cols.values()}
        if len(lengths) > 1:
            raise InvalidInput("entity_rows: every column must have the same number of values", field="entity_rows")
        return cols, lengths.pop() if lengths else 0
    if isinstance(entity_rows, list | tuple):
        if not all(isinstance(r, dict) for r in entity_rows):
            raise InvalidInput(
                "entity_rows must be a list of mappings such as {'driver_id': 1001}", field="entity_rows"
            )
        if len(entity_rows) == 1:
            return {k: [v] for k, v in entity_rows[0].items()}, 1
        names = list(dict.fromkeys(k for r in entity_rows for k in r))
        return {n: [r.get(n) for r in entity_rows] for n in names}, len(entity_rows)
    raise InvalidInput("entity_rows must be a list of mappings or a mapping of column to values", field="entity_rows")


def lookup_context(platform: Any, actor: Any, project: str, request_id: str | None = None) -> Context:
    """A caller's context without a database session, for :func:`get_online_features` only:
    it reads definitions from a cache (refreshed on a short transaction of its own) and
    values from the online store, so a lookup opens no metadata transaction."""
    platform.db.ensure_ready()
    return Context(
        actor=actor,
        project=project,
        session=None,  # type: ignore[arg-type]
        stores=platform.stores,
        settings=platform.settings,
        clock=platform.clock,
        request_id=request_id,
    )


def get_online_features(
    ctx: Context,
    entity_rows: Any,
    features: list[str] | None = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
) -> s.OnlineFeatures:
    """The newest online values for each entity row, with their event timestamps.

    It needs no metadata transaction (definitions come from a cache, refreshed through a
    short transaction of its own), so the embedded SDK calls it without opening one.
    """
    ctx.require("read")
    plan = _online_plan(ctx, features, feature_service, full_feature_names)
    columns, n = _entity_columns(entity_rows)
    now_us = to_us(ctx.now())
    requests = [(view.table, view.keys(columns, n)) for view in plan.views]
    answers = plan.store.read_many(requests) if n else [[] for _ in requests]
    out: dict[str, list[Any]] = {}
    stamps: dict[str, list[datetime | None]] = {}
    statuses: dict[str, list[str]] = {}
    for view, found in zip(plan.views, answers, strict=True):
        oldest = None if view.ttl_us is None else now_us - view.ttl_us
        stamps[view.name] = [None if hit is None else from_us(hit[0]) for hit in found]
        fresh = [i for i, hit in enumerate(found) if hit is not None and (oldest is None or hit[0] >= oldest)]
        if len(fresh) == 1:
            decoded = [json.loads(found[fresh[0]][1])]  # type: ignore[index]
        else:  # one parse for every entity: the per-call overhead of json.loads dominates small objects
            decoded = json.loads("[" + ",".join(found[i][1] for i in fresh) + "]") if fresh else []  # type: ignore[index]
        whole = len(fresh) == n  # every entity found and fresh: the columns are the decoded values
        for feat, dtype, col in view.features:
            got = [d.get(feat, _ABSENT) for d in decoded]
            if not view.plain:
                got = [v if v is None or v is _ABSENT else _decode(v, dtype) for v in got]
            if whole and _ABSENT not in got:
                out[col], statuses[col] = got, ["present"] * n
                continue
            values: list[Any] = [None] * n
            stat = ["not_found" if hit is None else "expired" for hit in found]
            for i, value in zip(fresh, got, strict=True):
                if value is not _ABSENT:
                    values[i], stat[i] = value, "present"
                else:
                    stat[i] = "not_found"
            out[col], statuses[col] = values, stat
    if plan.resolution.odfvs:
        out, statuses = _online_on_demand(plan, columns, out, statuses, n, full_feature_names)
    return s.OnlineFeatures.model_construct(
        entities={k: columns.get(k, []) for k in plan.entity_keys},
        features={c: out[c] for c in plan.wanted},
        event_timestamps=stamps,
        statuses={c: statuses[c] for c in plan.wanted},
    )


def _online_on_demand(
    plan: _OnlinePlan,
    columns: dict[str, list[Any]],
    out: dict[str, list[Any]],
    statuses: dict[str, list[str]],
    n: int,
    full: bool,
) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    from plinth.features.offline import apply_on_demand

    res = plan.resolution
    arrays: dict[str, Any] = {}
    for v in plan.views:
        for feat, dtype, col in v.features:
            arrays[f"{v.name}__{feat}"] = _typed_array(out[col], dtype)
    request = {name for o in res.odfvs for name in o.request_fields}
    for name in request:
        if name not in columns:
            raise InvalidInput(
                f"entity_rows have no {name!r}, request data of an on-demand feature view", field="entity_rows"
            )
        arrays[name] = pa.array(columns[name])
    table = apply_on_demand(pa.table(arrays) if arrays else pa.table({"_": [None] * n}), res, sorted(request))
    for o in res.odfvs:
        for feat in o.features:
            col = res.column(o.name, feat, full)
            values = table.column(f"{o.name}__{feat}").to_pylist()
            out[col] = values
            statuses[col] = ["present" if v is not None else "not_found" for v in values]
    return out, statuses


def _typed_array(values: list[Any], dtype: str) -> pa.Array:
    from plinth.features.definitions import DTYPES

    typ = pa.timestamp("us", tz="UTC") if dtype == "timestamp" else pa.type_for_alias(DTYPES[dtype])
    return pa.array(values, typ)


# --- push -----------------------------------------------------------------------------------------
PUSH_TARGETS = ("online_and_offline", "online", "offline")


def push(ctx: Context, view: str, rows: Any, to: str = "online_and_offline") -> s.PushResult:
    """Append rows to a view's source and write the newest per entity online (checked first)."""
    from plinth.features.offline import TS, as_arrow, utc_timestamps
    from plinth.features.sources import compatible, conform, open_source, type_label

    ctx.require("write")
    started = time.perf_counter()
    if to not in PUSH_TARGETS:
        raise InvalidInput(f"to must be one of {', '.join(PUSH_TARGETS)}, not {to!r}", field="to")
    table = as_arrow(rows, "pushed rows")
    if table.num_rows == 0:
        raise InvalidInput("nothing to push: the rows are empty", field="rows")
    with sub_context(ctx) as sub:
        row = registry._find(sub, "feature_view", view)
        resolved = registry.resolved_of(sub, row)
        keys = resolved.get("join_keys") or registry._join_keys(sub, row.spec)
        plan = ViewPlan(row.name, row.latest_version, row.spec, keys, resolved.get("join_key_types", {}), [])
        job = _ViewJob(row.id, plan, sub.project_id(), None)
        opened = open_source(sub, row.spec["source"]["uri"])
    if to != "offline" and not row.spec.get("online", True):
        raise InvalidInput(f"feature view {view!r} is not online; push with to='offline'", field="to")
    src = row.spec["source"]
    what = f"the rows pushed to feature view {view!r}"
    names = table.column_names
    for col in [*keys, src["timestamp_field"], *plan.dtypes]:
        if col not in names:
            raise InvalidInput(
                f"{what} have no column {col!r}{registry.closest(col, names)} (nothing was written)",
                field="rows",
                column=col,
            )
    for col, dtype in plan.dtypes.items():
        actual = table.column(col).type
        if not compatible(actual, dtype):
            raise InvalidInput(
                f"{what}: column {col!r} is {type_label(actual)}, but the feature is declared {dtype} "
                "(nothing was written)",
                field="rows",
                column=col,
            )
    aware, naive = utc_timestamps(table.column(src["timestamp_field"]), src["timestamp_field"], what)
    table = table.set_column(names.index(src["timestamp_field"]), src["timestamp_field"], aware)
    now = ctx.now()
    created = src.get("created_field")
    if created and created not in names:
        table = table.append_column(created, pa.array([now] * table.num_rows, pa.timestamp("us", tz="UTC")))
    offline_rows = conform(table, opened.schema, f"the source of feature view {view!r}")
    for key in keys:  # the online key must read back as the source writes it
        table = table.set_column(table.column_names.index(key), key, offline_rows.column(key))
    offline = ""
    if to != "online":
        from plinth.features.sources import append

        offline = append(ctx, opened, offline_rows)
    written = 0
    max_ts = None
    store = store_of(ctx)
    if to != "offline":
        import pyarrow.compute as pc

        online = table.select([*keys, *plan.dtypes]).append_column(TS, naive)
        if created:
            online = online.append_column("__plinth_created", utc_timestamps(table.column(created), created, what)[1])
        for f, d in plan.dtypes.items():
            online = online.set_column(online.column_names.index(f), f, _cast_feature(online.column(f), d))
        written = store.write(
            table_name(view, job.row_id), rows_for_store(online, keys, plan.dtypes, created=to_us(now))
        )
        newest = pc.max(naive).as_py()
        max_ts = newest.replace(tzinfo=UTC) if newest is not None else None
    info = _record_write(
        ctx,
        job,
        "push",
        store,
        None,
        None,
        table.num_rows,
        written,
        max_ts,
        offline or opened.ref,
        time.perf_counter() - started,
    )
    return s.PushResult(
        view=view, rows=table.num_rows, entities_written=info.entities_written, offline=offline, seconds=info.seconds
    )


def _cast_feature(col: Any, dtype: str) -> Any:
    from plinth.features.definitions import DTYPES

    if dtype == "timestamp":
        return utc_naive(col)
    return col.cast(pa.type_for_alias(DTYPES[dtype]))


def utc_naive(col: Any) -> Any:
    from plinth.features.offline import utc_timestamps

    return utc_timestamps(col, "value", "pushed rows")[1]

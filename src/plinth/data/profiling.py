"""Profiles of dataset versions, computed by DuckDB over the Delta table in one streaming
pass (counts, nulls, approximate distinct counts, min/max/mean/std, approximate
quantiles), then a second pass for histograms and top categories.

Column names are quoted as identifiers; every value goes in as a query parameter.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

from plinth.data.schemas import CategoryCount, ColumnProfile, ColumnSchema, HistogramBin

__all__ = ["column_kind", "compute_profile", "quote"]

_NUMERIC = {"byte", "short", "integer", "long", "float", "double"}
_TEMPORAL = {"date", "timestamp", "timestamp_ntz"}
QUANTILES = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
HISTOGRAM_BINS = 20
TOP_K = 10
TOP_MAX_DISTINCT = 50_000  # above this, top values say little and cost memory
SMALL_DISTINCT = 2_000  # up to this many values, counted for all columns in one scan
QUANTILE_SAMPLE = 16_384  # quantiles from a reservoir sample of this many values


def quote(name: str) -> str:
    """A column name as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def column_kind(delta_type: str) -> str:
    if delta_type in _NUMERIC or delta_type.startswith("decimal"):
        return "numeric"
    if delta_type == "string":
        return "text"
    if delta_type == "boolean":
        return "boolean"
    if delta_type in _TEMPORAL:
        return "temporal"
    return "other"


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _plain(value: Any) -> Any:
    """A min/max as JSON: numbers stay numbers (non-finite become None), times as ISO text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return _num(value) if hasattr(value, "__float__") else str(value)


def _edges(low: float, high: float) -> tuple[float, list[float]]:
    """The width and the upper edges of the histogram bins from ``low`` to ``high``."""
    bins = 1 if high == low else HISTOGRAM_BINS
    width = (high - low) / bins
    edges = [low + (b + 1) * width for b in range(bins)]
    edges[-1] = high
    return width, edges


def _bins(low: float, width: float, edges: list[float], counts: Any) -> list[HistogramBin]:
    counts = counts or {}
    return [
        HistogramBin(low=low + b * width, high=edge, count=int(counts.get(edge, 0)))
        for b, edge in enumerate(edges)
    ]


def compute_profile(
    con: Any,
    columns: list[ColumnSchema],
    table: str = "__t",
    bounds: dict[str, tuple[float, float]] | None = None,
) -> tuple[int, list[ColumnProfile], float]:
    """(row count, column profiles, seconds) of the relation ``table`` on ``con``.

    Two scans whatever the width: the moments, approximate distinct counts and
    reservoir-sampled quantiles of every column; then every numeric histogram (its edges
    from the first scan's min/max) together with the exact counts of low-cardinality text
    and boolean columns (wider ones by a grouped query each).

    ``bounds`` (column -> (min, max), e.g. from the Delta log's file statistics) lets the
    first scan also count the histograms of those columns; a histogram is kept only where
    the scan's own min and max equal the hint (else it is counted in the second scan), so
    the result is the same as without the hint.
    """
    start = time.perf_counter()
    selects = ["count(*)"]
    layout: list[tuple[ColumnSchema, str, list[str]]] = []
    params: dict[str, Any] = {}
    hinted: dict[str, tuple[float, float, list[float]]] = {}
    quantiles = ", ".join(str(v) for v in QUANTILES.values())
    for col in columns:
        q = quote(col.name)
        kind = column_kind(col.type)
        parts = [f"count({q})", f"approx_count_distinct({q})"]
        names = ["count", "distinct"]
        if kind == "numeric":
            d = f"CAST({q} AS DOUBLE)"
            parts += [
                f"min({q})",
                f"max({q})",
                f"avg({d})",
                f"stddev_samp({d})",
                f"reservoir_quantile({d}, [{quantiles}], {QUANTILE_SAMPLE})",
            ]
            names += ["min", "max", "mean", "std", "quantiles"]
            hint = (bounds or {}).get(col.name)
            if hint is not None and _num(hint[0]) is not None and _num(hint[1]) is not None:
                low, high = float(hint[0]), float(hint[1])
                if low <= high:
                    width, edges = _edges(low, high)
                    params[f"e{len(hinted)}"] = edges
                    parts.append(f"histogram({d}, $e{len(hinted)})")
                    names.append("histogram")
                    hinted[col.name] = (low, width, edges)
        elif kind in {"temporal", "text", "boolean"}:
            parts += [f"min({q})", f"max({q})"]
            names += ["min", "max"]
        selects += parts
        layout.append((col, kind, names))
    row = con.execute(f"SELECT {', '.join(selects)} FROM {table}", params or None).fetchall()[0]
    rows = int(row[0])
    profiles: list[ColumnProfile] = []
    i = 1
    for col, kind, names in layout:
        values = dict(zip(names, row[i : i + len(names)], strict=True))
        i += len(names)
        count = int(values["count"])
        nulls = rows - count
        prof = ColumnProfile(
            name=col.name,
            type=col.type,
            kind=kind,  # type: ignore[arg-type]
            count=count,
            nulls=nulls,
            null_share=(nulls / rows) if rows else 0.0,
            distinct=min(int(values["distinct"]), count),
            min=_plain(values.get("min")),
            max=_plain(values.get("max")),
        )
        if kind == "numeric":
            prof.mean = _num(values["mean"])
            prof.std = _num(values["std"])
            qs = values["quantiles"]
            if qs is not None:
                pairs = zip(QUANTILES, (_num(x) for x in qs), strict=True)
                prof.quantiles = {k: v for k, v in pairs if v is not None}
            if col.name in hinted:
                low, width, edges = hinted[col.name]
                if _num(prof.min) == low and _num(prof.max) == edges[-1]:
                    prof.histogram = _bins(low, width, edges, values["histogram"])
        profiles.append(prof)
    _second_pass(con, table, profiles)
    return rows, profiles, time.perf_counter() - start


def _second_pass(con: Any, table: str, profiles: list[ColumnProfile]) -> None:
    """Equal-width histograms of every numeric column and the exact value counts of
    low-cardinality text and boolean columns, together in one scan; then the top values of
    wider text columns by a grouped query each."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    plans = []
    for n, prof in enumerate(profiles):
        low, high = _num(prof.min), _num(prof.max)
        if prof.kind != "numeric" or low is None or high is None or prof.histogram:
            continue
        width, edges = _edges(low, high)
        d = f"CAST({quote(prof.name)} AS DOUBLE)"
        parts.append(f"histogram({d}, $e{n})")
        params[f"e{n}"] = edges
        plans.append((prof, low, width, edges))
    small = [
        p
        for p in profiles
        if p.kind in {"text", "boolean"} and p.count and (p.distinct or 0) <= SMALL_DISTINCT
    ]
    parts += [f"histogram(CAST({quote(p.name)} AS VARCHAR))" for p in small]
    if parts:
        row = con.execute(f"SELECT {', '.join(parts)} FROM {table}", params or None).fetchall()[0]
        for (prof, low, width, edges), counts in zip(plans, row[: len(plans)], strict=True):
            prof.histogram = _bins(low, width, edges, counts)
        for prof, counts in zip(small, row[len(plans) :], strict=True):
            ranked = sorted((counts or {}).items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_K]
            prof.top = [CategoryCount(value=v, count=int(c)) for v, c in ranked]
    for prof in profiles:
        if (
            prof.kind in {"text", "boolean"}
            and prof.count
            and SMALL_DISTINCT < (prof.distinct or 0) <= TOP_MAX_DISTINCT
        ):
            prof.top = _top(con, table, prof.name)


def _top(con: Any, table: str, name: str) -> list[CategoryCount]:
    q = quote(name)
    rows = con.execute(
        f"SELECT CAST({q} AS VARCHAR) AS v, count(*) AS n FROM {table} GROUP BY v ORDER BY n DESC, v LIMIT ?",
        [TOP_K],
    ).fetchall()
    return [CategoryCount(value=v, count=int(n)) for v, n in rows]

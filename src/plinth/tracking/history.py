"""Metric history in chunks: the points of one key from one batch, packed into one row.

Steps and timestamps are little-endian int64 arrays, values little-endian float64, each
chunk sorted by (step, timestamp). Reading concatenates a key's chunks in order of their
first step and sorts again only when chunks overlap (points logged out of order).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

_SWAP = sys.byteorder != "little"

Points = tuple[list[int], list[int], list[float]]


def pack(kind: str, values: Iterable[Any]) -> bytes:
    data = array(kind, values)
    if _SWAP:
        data.byteswap()
    return data.tobytes()


def unpack(kind: str, blob: bytes) -> array[Any]:
    data = array(kind)
    data.frombytes(blob)
    if _SWAP:
        data.byteswap()
    return data


def _is_sorted(steps: Sequence[int], stamps: Sequence[int]) -> bool:
    prev_step, prev_ts = steps[0], stamps[0]
    for step, ts in zip(steps, stamps, strict=True):
        if step < prev_step or (step == prev_step and ts < prev_ts):
            return False
        prev_step, prev_ts = step, ts
    return True


def sort_points(steps: list[int], stamps: list[int], values: list[float]) -> Points:
    """The points ordered by (step, timestamp), stable for equal pairs."""
    if not steps or _is_sorted(steps, stamps):
        return steps, stamps, values
    order = sorted(range(len(steps)), key=lambda i: (steps[i], stamps[i]))
    return [steps[i] for i in order], [stamps[i] for i in order], [values[i] for i in order]


def chunk_row(
    run_id: str, key: str, steps: list[int], stamps: list[int], values: list[float]
) -> tuple[dict[str, Any], tuple[int, int, float]]:
    """The chunk's row and its newest point (step, timestamp, value)."""
    steps, stamps, values = sort_points(steps, stamps, values)
    return {
        "run_id": run_id,
        "key": key,
        "first_step": steps[0],
        "last_step": steps[-1],
        "count": len(steps),
        "steps": pack("q", steps),
        "timestamps": pack("q", stamps),
        "values": pack("d", values),
    }, (steps[-1], stamps[-1], values[-1])


def merge_chunks(chunks: Iterable[tuple[int, int, bytes, bytes, bytes]]) -> Points:
    """Concatenate chunks given in order of first step; sort when they overlap."""
    steps: array[int] = array("q")
    stamps: array[int] = array("q")
    values: array[float] = array("d")
    overlap, last = False, None
    for first_step, last_step, s_blob, t_blob, v_blob in chunks:
        if last is not None and first_step < last:
            overlap = True
        last = last_step if last is None else max(last, last_step)
        steps.extend(unpack("q", s_blob))
        stamps.extend(unpack("q", t_blob))
        values.extend(unpack("d", v_blob))
    if overlap:
        return sort_points(steps.tolist(), stamps.tolist(), values.tolist())
    return steps.tolist(), stamps.tolist(), values.tolist()


def downsample(points: Points, max_points: int | None) -> Points:
    """At most ``max_points`` evenly spaced points, always keeping the first and the last."""
    steps, stamps, values = points
    n = len(steps)
    if max_points is None or n <= max_points or max_points < 2:
        return points
    idx = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return [steps[i] for i in idx], [stamps[i] for i in idx], [values[i] for i in idx]

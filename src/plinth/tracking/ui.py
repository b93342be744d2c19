"""Pages of the tracking area: experiments, the runs table, run detail, compare.

Thin like every door: each page calls the tracking (and artifacts) services through the
caller. Listing runs is four queries whatever the number of runs (``search_runs``);
charts get every run's histories in one query (``metric_histories``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from plinth.artifacts import service as artifacts
from plinth.core.errors import InvalidInput
from plinth.server.deps import CallerDep, get_platform
from plinth.server.ui import Flash, render, ui_router
from plinth.tracking import schemas as s
from plinth.tracking import service as svc

router = ui_router()

PAGE_SIZE = 50
MAX_COLUMNS = 8  # params and metrics shown as columns in the runs table
CHART_POINTS = 2000  # histories are thinned evenly to this many points for charts
PREVIEW_BYTES = 256 * 1024
PREVIEW_ROWS = 50
TEXT_SUFFIXES = (".json", ".yaml", ".yml", ".txt", ".md", ".csv", ".log")
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}  # never SVG: it can carry script


def _finite(value: Any) -> Any:
    """JSON for charts has no NaN/inf: uPlot draws a gap for null."""
    return value if isinstance(value, int | float) and math.isfinite(value) else None


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.6g}"
    return str(value)


def _duration(start: Any, end: Any) -> str:
    if end is None:
        return "running"
    seconds = (end - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _line_chart(histories: list[s.MetricHistory], label_of: dict[str, str], by_time: bool) -> dict[str, Any]:
    """One uPlot spec overlaying several histories on the union of their x values."""
    xs_all: set[int] = set()
    series_points = []
    for h in histories:
        xs = [t / 1000 for t in h.timestamps] if by_time else h.steps
        points = dict(zip(xs, h.values, strict=True))
        series_points.append((label_of.get(h.run_id, h.run_id), points))
        xs_all.update(points)
    x = sorted(xs_all)
    return {
        "kind": "line",
        "time": by_time,
        "x": x,
        "series": [{"label": label, "values": [_finite(p.get(v)) for v in x]} for label, p in series_points],
    }


def _drawable(charts: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Charts with at least one finite point, and the keys whose points are all NaN/inf."""
    keep = {k: c for k, c in charts.items() if any(v is not None for s in c["series"] for v in s["values"])}
    return keep, sorted(set(charts) - set(keep))


@router.get("/experiments")
def experiments_page(request: Request, caller: CallerDep) -> Response:
    return render(request, "tracking/experiments.html", {"experiments": caller.call(svc.list_experiments)})


@router.get("/experiments/{name}")
def runs_page(
    request: Request,
    name: str,
    caller: CallerDep,
    filter: Annotated[str, Query(max_length=4000)] = "",
    order: Annotated[str, Query(max_length=500)] = "attributes.start_time desc",
    page: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    experiment = caller.call(svc.get_experiment, name=name)
    flash: list[Flash] = []
    status = 200
    try:
        table = caller.call(
            svc.search_runs,
            experiments=[name],
            filter=filter.strip() or None,
            order_by=[order] if order.strip() else None,
            max_results=PAGE_SIZE,
            page_token=page,
        )
    except InvalidInput as exc:  # a bad filter keeps the page, with the message that points at the token
        flash.append(Flash.error(exc))
        status = exc.http_status
        table = caller.call(svc.search_runs, experiments=[name], max_results=PAGE_SIZE)
    rows = list(table.rows())
    metric_keys = sorted(k for k in table.metrics if not k.startswith("system/"))[:MAX_COLUMNS]
    param_keys = sorted(table.params)[:MAX_COLUMNS]
    return render(
        request,
        "tracking/runs.html",
        {
            "experiment": experiment,
            "rows": rows,
            "metric_keys": metric_keys,
            "param_keys": param_keys,
            "filter": filter,
            "order": order,
            "next_page": table.next_page_token,
            "fmt": _fmt,
            "duration": _duration,
            "flash": flash,
        },
        status_code=status,
    )


@router.get("/runs/compare")
def compare_page(
    request: Request,
    caller: CallerDep,
    ids: Annotated[list[str], Query(max_length=100)] = [],  # noqa: B006 - FastAPI copies defaults
    x: str = "step",
) -> Response:
    ids = list(dict.fromkeys(i for i in ids if i))
    if len(ids) < 2:
        raise InvalidInput("choose at least two runs to compare", field="ids")
    comparison = caller.call(svc.compare_runs, run_ids=ids)
    label_of = {r.id: r.name for r in comparison.runs}
    histories = caller.call(svc.metric_histories, run_ids=ids, max_points=CHART_POINTS)
    by_key: dict[str, list[s.MetricHistory]] = {}
    for h in histories:
        by_key.setdefault(h.key, []).append(h)
    charts, not_finite = _drawable({key: _line_chart(hs, label_of, x == "time") for key, hs in sorted(by_key.items())})
    return render(
        request,
        "tracking/compare.html",
        {"comparison": comparison, "charts": charts, "not_finite": not_finite, "x": x, "ids": ids, "fmt": _fmt},
    )


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str, caller: CallerDep, x: str = "step") -> Response:
    run = caller.call(svc.get_run, run_id=run_id)
    in_project = get_platform(request).caller(caller.actor, run.project, caller.request_id)
    files = in_project.call(artifacts.list_artifacts, owner=f"runs:/{run.id}")
    histories = caller.call(svc.metric_histories, run_ids=[run.id], max_points=CHART_POINTS)
    label = {run.id: run.name}
    charts = {
        h.key: _line_chart([h], label, x == "time" or h.key.startswith("system/"))
        for h in sorted(histories, key=lambda h: h.key)
    }
    charts, not_finite = _drawable(charts)
    children = caller.call(svc.list_child_runs, run_id=run.id)
    return render(
        request,
        "tracking/run.html",
        {
            "run": run,
            "files": files,
            "charts": {k: v for k, v in charts.items() if not k.startswith("system/")},
            "system_charts": {k: v for k, v in charts.items() if k.startswith("system/")},
            "not_finite": not_finite,
            "children": children,
            "x": x,
            "fmt": _fmt,
            "duration": _duration,
        },
    )


def _read_prefix(chunks: Any, limit: int) -> tuple[bytes, bool]:
    buf = bytearray()
    for chunk in chunks:
        buf.extend(chunk)
        if len(buf) > limit:
            chunks.close()
            return bytes(buf[:limit]), True
    return bytes(buf), False


@router.get("/runs/{run_id}/artifact")
def artifact_page(
    request: Request, run_id: str, caller: CallerDep, name: Annotated[str, Query(max_length=1024)]
) -> Response:
    """A preview of one artifact: text, JSON, an image, or the first rows of a table."""
    run = caller.call(svc.get_run, run_id=run_id)
    in_project = get_platform(request).caller(caller.actor, run.project, caller.request_id)
    info, chunks = in_project.call(artifacts.open_artifact, owner=f"runs:/{run.id}", name=name)
    preview: dict[str, Any] = {"kind": "none"}
    if info.media_type in IMAGE_TYPES:
        chunks.close()
        preview = {"kind": "image"}
    elif name.endswith(".parquet"):
        preview = _table_preview(b"".join(chunks))
    elif info.media_type.startswith("text/") or name.endswith(TEXT_SUFFIXES):
        data, cut = _read_prefix(chunks, PREVIEW_BYTES)
        text = data.decode("utf-8", errors="replace")
        if name.endswith(".json") and not cut:
            with contextlib.suppress(ValueError):  # not JSON after all: show it as text
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        preview = {"kind": "text", "text": text, "cut": cut}
    else:
        chunks.close()
    return render(request, "tracking/artifact.html", {"run": run, "info": info, "preview": preview})


def _table_preview(data: bytes) -> dict[str, Any]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # a file named .parquet that is not one
        raise InvalidInput(f"the artifact is not a readable Parquet file: {exc}", field="name") from None
    head = table.slice(0, PREVIEW_ROWS).to_pylist()
    return {"kind": "table", "columns": table.column_names, "rows": head, "total": table.num_rows}


@router.get("/runs/{run_id}/artifact/raw")
def artifact_raw(
    request: Request, run_id: str, caller: CallerDep, name: Annotated[str, Query(max_length=1024)]
) -> Response:
    """The bytes of an image artifact for the preview page (other types are not served here)."""
    run = caller.call(svc.get_run, run_id=run_id)
    in_project = get_platform(request).caller(caller.actor, run.project, caller.request_id)
    info, chunks = in_project.call(artifacts.open_artifact, owner=f"runs:/{run.id}", name=name)
    if info.media_type not in IMAGE_TYPES:
        chunks.close()
        raise InvalidInput(f"{name!r} is {info.media_type}, not an image this page shows", field="name")
    return Response(
        b"".join(chunks),
        media_type=info.media_type,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"},
    )

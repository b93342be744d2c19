"""Pages of the data area: datasets, versions, profiles with histograms, quality, lineage.

Thin like every door: each page calls the data services through the caller. A stored
profile is shown as is; computing a missing one is an explicit button (it writes).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response

from plinth.data import lineage_graph
from plinth.data import schemas as s
from plinth.data import service as svc
from plinth.server.deps import CallerDep
from plinth.server.ui import link, render, ui_router

router = ui_router("/data")

QUALITY_SHOWN = 20
VERSIONS_SHOWN = 200


def _histogram_chart(column: s.ColumnProfile) -> dict[str, Any] | None:
    if column.histogram:
        step = max(1, len(column.histogram) // 5)  # label about five bins so the axis stays readable
        labels = [f"{b.low:.3g}" if i % step == 0 else "" for i, b in enumerate(column.histogram)]
        return {"kind": "bar", "labels": labels, "values": [b.count for b in column.histogram], "label": "rows"}
    if column.top:
        labels = ["(null)" if c.value is None else str(c.value)[:24] for c in column.top]
        return {"kind": "bar", "labels": labels, "values": [c.count for c in column.top], "label": "rows"}
    return None


@router.get("")
def datasets_page(request: Request, caller: CallerDep) -> Response:
    return render(request, "data/datasets.html", {"datasets": caller.call(svc.list_datasets)})


@router.get("/{name}")
def dataset_page(
    request: Request,
    name: str,
    caller: CallerDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    detail = caller.call(svc.dataset_detail, name=name)
    versions = caller.call(svc.list_versions, name=name, limit=VERSIONS_SHOWN)
    chosen = version or detail.dataset.latest_version
    current = caller.call(svc.get_version, ref=f"datasets:/{name}/{chosen}")
    profile = caller.call(svc.profile, ref=current.ref) if current.has_profile else None
    charts = {c.name: _histogram_chart(c) for c in profile.columns} if profile else {}
    quality = caller.call(svc.quality_results, name=name, version=chosen, limit=QUALITY_SHOWN)
    edges = caller.call(lineage_graph.edges_of, node=current.ref)
    return render(
        request,
        "data/dataset.html",
        {
            "detail": detail,
            "versions": versions,
            "current": current,
            "profile": profile,
            "charts": charts,
            "quality": quality,
            "edges": edges,
        },
    )


@router.post("/{name}/versions/{version}/profile")
def compute_profile(request: Request, name: str, version: int, caller: CallerDep) -> Response:
    caller.call(svc.profile, ref=f"datasets:/{name}/{version}", refresh=True)
    return RedirectResponse(link(request, f"/data/{name}", version=version), status_code=303)

"""Pages of the features area: feature views (with freshness), a view's detail, the feature
catalog with search, feature services, and one feature's detail. Each page is a service call."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import Response

from plinth.features import catalog
from plinth.features import service as svc
from plinth.server.deps import CallerDep
from plinth.server.ui import render, ui_router

router = ui_router()


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@router.get("/features")
def views_page(request: Request, caller: CallerDep) -> Response:
    definitions = caller.call(svc.list_definitions)
    fresh = {f.view: f for f in caller.call(catalog.freshness)}
    views = [d for d in definitions if d.kind in {"feature_view", "on_demand_feature_view"}]
    return render(
        request,
        "features/views.html",
        {
            "views": views,
            "entities": [d for d in definitions if d.kind == "entity"],
            "services": [d for d in definitions if d.kind == "feature_service"],
            "fresh": fresh,
            "age": _age,
        },
    )


@router.get("/features/catalog")
def catalog_page(request: Request, caller: CallerDep, q: Annotated[str, Query(max_length=500)] = "") -> Response:
    found = caller.call(catalog.list_features, query=q.strip() or None)
    return render(request, "features/catalog.html", {"features": found, "q": q, "age": _age})


@router.get("/features/services")
def services_page(request: Request, caller: CallerDep) -> Response:
    return render(
        request, "features/services.html", {"services": caller.call(svc.list_definitions, kind="feature_service")}
    )


@router.get("/features/services/{name}")
def service_page(request: Request, name: str, caller: CallerDep) -> Response:
    return render(request, "features/service.html", {"detail": caller.call(catalog.service_detail, name=name)})


@router.get("/features/views/{name}")
def view_page(request: Request, name: str, caller: CallerDep) -> Response:
    return render(request, "features/view.html", {"detail": caller.call(catalog.view_detail, name=name), "age": _age})


@router.get("/features/catalog/{ref}")
def feature_page(request: Request, ref: str, caller: CallerDep) -> Response:
    return render(request, "features/feature.html", {"f": caller.call(catalog.feature_detail, ref=ref), "age": _age})

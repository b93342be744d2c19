"""Pages of serving: the deployments, with their traffic policy, replicas and status."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from plinth.server.deps import CallerDep
from plinth.server.ui import render, ui_router
from plinth.serving import service as svc

router = ui_router("/serving")


@router.get("")
def deployments_page(request: Request, caller: CallerDep) -> Response:
    return render(request, "serving/list.html", {"deployments": caller.call(svc.list_deployments)})

"""Pages of serving: the deployments, with their traffic policy, replicas and status, and the batch
inference jobs, with their state and output dataset version, and the streaming workers, with
their counts and last heartbeat."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from plinth.server.deps import CallerDep
from plinth.server.ui import render, ui_router
from plinth.serving import jobs
from plinth.serving import service as svc
from plinth.serving import stream_workers as sw

JOBS_SHOWN = 50

router = ui_router("/serving")


@router.get("")
def deployments_page(request: Request, caller: CallerDep) -> Response:
    return render(
        request,
        "serving/list.html",
        {
            "deployments": caller.call(svc.list_deployments),
            "jobs": caller.call(jobs.list_jobs, limit=JOBS_SHOWN),
            "workers": caller.call(sw.list_workers),
        },
    )

"""REST routes of deployments: thin, each one service call."""

from __future__ import annotations

from fastapi import APIRouter, Response

from plinth.server.deps import CallerDep
from plinth.serving import schemas as s
from plinth.serving import service as svc

router = APIRouter(tags=["serving"])


@router.post(s.CREATE.path, status_code=201)
def create_deployment(body: s.DeploymentCreate, caller: CallerDep) -> s.DeploymentInfo:
    return caller.call(svc.create_deployment, **body.model_dump())


@router.get(s.LIST.path)
def list_deployments(caller: CallerDep) -> list[s.DeploymentInfo]:
    return caller.call(svc.list_deployments)


@router.get(s.GET.path)
def get_deployment(name: str, caller: CallerDep) -> s.DeploymentInfo:
    return caller.call(svc.get_deployment, name=name)


@router.patch(s.UPDATE.path)
def update_deployment(name: str, body: s.DeploymentUpdate, caller: CallerDep) -> s.DeploymentInfo:
    return caller.call(svc.update_deployment, name=name, **body.model_dump())


@router.delete(s.DELETE.path, status_code=204)
def delete_deployment(name: str, caller: CallerDep) -> Response:
    caller.call(svc.delete_deployment, name=name)
    return Response(status_code=204)


@router.get(s.INFERENCE_LOG.path)
def inference_log_location(name: str, caller: CallerDep) -> s.InferenceLogInfo:
    return caller.call(svc.inference_log_location, name=name)

"""REST routes of the model registry: thin, each one service call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from plinth.registry import insights, stages
from plinth.registry import schemas as s
from plinth.registry import service as svc
from plinth.server.deps import CallerDep

router = APIRouter(tags=["registry"])


@router.post(s.CREATE_MODEL.path, status_code=201)
def create_model(body: s.ModelCreate, caller: CallerDep) -> s.ModelInfo:
    return caller.call(svc.create_model, name=body.name, description=body.description, owner=body.owner, tags=body.tags)


@router.get(s.LIST_MODELS.path)
def list_models(caller: CallerDep) -> list[s.ModelInfo]:
    return caller.call(svc.list_models)


@router.get(s.GET_MODEL.path)
def get_model(name: str, caller: CallerDep) -> s.ModelDetail:
    return caller.call(svc.get_model, name=name)


@router.patch(s.UPDATE_MODEL.path)
def update_model(name: str, body: s.ModelUpdate, caller: CallerDep) -> s.ModelInfo:
    return caller.call(svc.update_model, name=name, description=body.description, owner=body.owner, tags=body.tags)


@router.post(s.REGISTER_VERSION.path, status_code=201)
def register_version(name: str, body: s.VersionCreate, caller: CallerDep) -> s.VersionInfo:
    return caller.call(
        svc.register_version, name=name, source=body.source, description=body.description, tags=body.tags
    )


@router.get(s.LIST_VERSIONS.path)
def list_versions(name: str, caller: CallerDep, stage: s.Stage | None = None) -> list[s.VersionInfo]:
    return caller.call(svc.list_versions, name=name, stage=stage)


@router.get(s.GET_VERSION.path)
def get_version(name: str, version: int, caller: CallerDep) -> s.VersionInfo:
    return caller.call(svc.get_version, name=name, version=version)


@router.patch(s.UPDATE_VERSION.path)
def update_version(name: str, version: int, body: s.VersionUpdate, caller: CallerDep) -> s.VersionInfo:
    return caller.call(svc.update_version, name=name, version=version, description=body.description, tags=body.tags)


@router.get(s.RESOLVE.path)
def resolve(ref: str, caller: CallerDep) -> s.VersionInfo:
    return caller.call(svc.resolve, ref=ref)


@router.put(s.SET_ALIAS.path)
def set_alias(name: str, alias: str, body: s.AliasSet, caller: CallerDep) -> s.VersionInfo:
    return caller.call(svc.set_alias, name=name, alias=alias, version=body.version)


@router.delete(s.DELETE_ALIAS.path, status_code=204)
def delete_alias(name: str, alias: str, caller: CallerDep) -> Response:
    caller.call(svc.delete_alias, name=name, alias=alias)
    return Response(status_code=204)


@router.post(s.TRANSITION_STAGE.path)
def transition_stage(name: str, version: int, body: s.StageChange, caller: CallerDep) -> s.VersionInfo:
    return caller.call(stages.transition_stage, name=name, version=version, stage=body.stage, comment=body.comment)


@router.post(s.REQUEST_APPROVAL.path, status_code=201)
def request_approval(body: s.ApprovalCreate, caller: CallerDep) -> s.ApprovalInfo:
    return caller.call(
        stages.request_approval, name=body.name, version=body.version, reason=body.reason, stage=body.stage
    )


@router.get(s.LIST_APPROVALS.path)
def list_approvals(
    caller: CallerDep,
    status: str = "pending",
    name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[s.ApprovalInfo]:
    return caller.call(stages.list_approvals, status=status, name=name, limit=limit)


@router.post(s.APPROVE.path)
def approve(request_id: str, caller: CallerDep, body: s.Decision | None = None) -> s.ApprovalInfo:
    return caller.call(stages.approve, request_id=request_id, comment=body.comment if body else None)


@router.post(s.REJECT.path)
def reject(request_id: str, caller: CallerDep, body: s.Decision | None = None) -> s.ApprovalInfo:
    return caller.call(stages.reject, request_id=request_id, comment=body.comment if body else None)


@router.post(s.CANCEL_APPROVAL.path)
def cancel_approval(request_id: str, caller: CallerDep) -> s.ApprovalInfo:
    return caller.call(stages.cancel_approval, request_id=request_id)


@router.get(s.HISTORY.path)
def history(name: str, caller: CallerDep, at: datetime | None = None) -> s.ModelHistory:
    return caller.call(insights.history, name=name, at=at)


@router.get(s.COMPARE.path)
def compare_versions(name: str, caller: CallerDep, versions: Annotated[list[int], Query()]) -> s.VersionComparison:
    return caller.call(insights.compare_versions, name=name, versions=versions)


@router.get(s.GET_CARD.path)
def get_card(name: str, caller: CallerDep, ref: str | None = None) -> s.ModelCard:
    return caller.call(insights.get_card, name=name, ref=ref)


@router.put(s.UPDATE_CARD.path)
def update_card(name: str, body: s.CardUpdate, caller: CallerDep) -> s.ModelCard:
    return caller.call(insights.update_card, name=name, fields=body.fields, ref=body.ref)

"""Stages and approvals: development → staging → production → archived.

Versions move freely between development, staging and archived; production is entered
only by approving a request that gives a reason, decided by a user with the approver
capability who is not the requester. Approving archives the version in production
before. Every move is a ``model_version.stage`` event of ``models:/<name>``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from plinth.core.context import Context
from plinth.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from plinth.core.ids import new_id
from plinth.registry import schemas as s
from plinth.registry.service import MAX_REASON, _model, _stage, _text, _version, _version_info
from plinth.registry.tables import ApprovalRequest, ModelVersion, RegisteredModel

# Moves that need no approval; production is entered only by approving a request.
TRANSITIONS: dict[str, frozenset[str]] = {
    "development": frozenset({"staging", "archived"}),
    "staging": frozenset({"development", "archived"}),
    "production": frozenset({"staging", "archived"}),
    "archived": frozenset({"development", "staging"}),
}


# --- stages and approvals ---------------------------------------------------------------------
def _move(ctx: Context, model: RegisteredModel, row: ModelVersion, stage: str, **why: Any) -> None:
    before = row.stage
    row.stage, row.updated_at = stage, ctx.now()
    ctx.emit(
        "model_version.stage", f"models:/{model.name}", {"version": row.version, "from": before, "to": stage, **why}
    )


def transition_stage(ctx: Context, name: str, version: int, stage: str, comment: str | None = None) -> s.VersionInfo:
    """Move a version between development, staging and archived (production needs approval)."""
    ctx.require("write")
    stage = _stage(stage)
    model = _model(ctx, name)
    row = _version(ctx, model, version)
    if stage == row.stage:
        return _version_info(ctx, model, row)
    if stage == "production":
        raise PermissionDenied(
            f"moving version {row.version} of {name!r} to production needs an approval: request one "
            f"(plinth registry request-approval {name} {row.version} --reason ...) and have an approver "
            "other than you approve it",
            model=name,
            version=row.version,
        )
    if stage not in TRANSITIONS[row.stage]:
        raise Conflict(f"version {row.version} of {name!r} is {row.stage}; it cannot move to {stage}", stage=row.stage)
    _move(ctx, model, row, stage, comment=_text(comment, "comment", MAX_REASON) if comment else None)
    return _version_info(ctx, model, row)


def _approval_info(ctx: Context, req: ApprovalRequest, model: RegisteredModel, row: ModelVersion) -> s.ApprovalInfo:
    return s.ApprovalInfo(
        id=req.id,
        project=ctx.project,
        name=model.name,
        version=row.version,
        to_stage=req.to_stage,
        reason=req.reason,
        status=req.status,  # type: ignore[arg-type]
        requested_by=req.requested_by,
        requested_at=req.requested_at,
        decided_by=req.decided_by,
        decided_at=req.decided_at,
        comment=req.comment,
        version_stage=row.stage,
    )


def request_approval(ctx: Context, name: str, version: int, reason: str, stage: str = "production") -> s.ApprovalInfo:
    """Ask for a version to be moved to production; an approver other than you decides."""
    ctx.require("write")
    if _stage(stage) != "production":
        raise InvalidInput(f"only production needs an approval; move to {stage} with transition_stage", field="stage")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput(
            "an approval request needs a reason: say why this version should go to production", field="reason"
        )
    reason = _text(reason.strip(), "reason", MAX_REASON)
    model = _model(ctx, name)
    row = _version(ctx, model, version)
    if row.stage == "production":
        raise Conflict(f"version {row.version} of {name!r} is in production already", model=name, version=row.version)
    pending = ctx.session.execute(
        select(ApprovalRequest).where(ApprovalRequest.version_id == row.id, ApprovalRequest.status == "pending")
    ).scalar()
    if pending is not None:
        raise Conflict(
            f"version {row.version} of {name!r} has a pending approval request already ({pending.id}, "
            f"by {pending.requested_by})",
            request_id=pending.id,
        )
    req = ApprovalRequest(
        id=new_id(),
        project_id=ctx.project_id(),
        model_id=model.id,
        version_id=row.id,
        to_stage="production",
        reason=reason,
        status="pending",
        requested_by=ctx.actor.name,
        requested_at=ctx.now(),
    )
    ctx.session.add(req)
    ctx.emit(
        "approval.request",
        f"models:/{name}",
        {"version": row.version, "request_id": req.id, "to": "production", "reason": reason[:500]},
    )
    return _approval_info(ctx, req, model, row)


def _request(ctx: Context, request_id: object) -> tuple[ApprovalRequest, RegisteredModel, ModelVersion]:
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInput(f"approval request id {request_id!r} is not valid", field="request_id")
    found = ctx.session.execute(
        select(ApprovalRequest, RegisteredModel, ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ApprovalRequest.model_id)
        .join(ModelVersion, ModelVersion.id == ApprovalRequest.version_id)
        .where(ApprovalRequest.id == request_id, ApprovalRequest.project_id == ctx.project_id())
        .with_for_update(of=ApprovalRequest)
    ).first()
    if found is None:
        raise NotFound(
            f"approval request {request_id!r} does not exist in project {ctx.project!r}", request_id=request_id
        )
    return found[0], found[1], found[2]


def _decide(ctx: Context, request_id: str, outcome: str, comment: str | None) -> s.ApprovalInfo:
    req, model, row = _request(ctx, request_id)
    ctx.require("approve")
    if req.status != "pending":
        raise Conflict(
            f"approval request {req.id} is {req.status} already (by {req.decided_by}); nothing to decide",
            request_id=req.id,
            status=req.status,
        )
    if req.requested_by == ctx.actor.name:
        raise PermissionDenied(
            f"{ctx.actor.name!r} requested this approval and may not decide it; another approver must",
            request_id=req.id,
        )
    req.status = outcome
    req.decided_by, req.decided_at = ctx.actor.name, ctx.now()
    req.comment = _text(comment, "comment", MAX_REASON) if comment else None
    ctx.emit(
        f"approval.{'approve' if outcome == 'approved' else 'reject'}",
        f"models:/{model.name}",
        {"version": row.version, "request_id": req.id, "requested_by": req.requested_by, "comment": req.comment},
    )
    if outcome == "approved":
        current = ctx.session.execute(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.stage == "production", ModelVersion.id != row.id
            )
        ).scalars()
        for previous in current:
            _move(ctx, model, previous, "archived", replaced_by=row.version)
        _move(ctx, model, row, "production", request_id=req.id, approved_by=ctx.actor.name)
    return _approval_info(ctx, req, model, row)


def approve(ctx: Context, request_id: str, comment: str | None = None) -> s.ApprovalInfo:
    """Approve a request: the version goes to production and the one there is archived."""
    return _decide(ctx, request_id, "approved", comment)


def reject(ctx: Context, request_id: str, comment: str | None = None) -> s.ApprovalInfo:
    return _decide(ctx, request_id, "rejected", comment)


def cancel_approval(ctx: Context, request_id: str) -> s.ApprovalInfo:
    """Withdraw a pending request (its requester, or a maintainer)."""
    req, model, row = _request(ctx, request_id)
    if req.requested_by != ctx.actor.name:
        ctx.require("manage")
    else:
        ctx.require("write")
    if req.status != "pending":
        raise Conflict(f"approval request {req.id} is {req.status} already", request_id=req.id, status=req.status)
    req.status, req.decided_by, req.decided_at = "cancelled", ctx.actor.name, ctx.now()
    ctx.emit("approval.cancel", f"models:/{model.name}", {"version": row.version, "request_id": req.id})
    return _approval_info(ctx, req, model, row)


def list_approvals(
    ctx: Context, status: str | None = "pending", name: str | None = None, limit: int = 200
) -> list[s.ApprovalInfo]:
    """Approval requests of the project, newest first (``status=None``: all of them)."""
    ctx.require("read")
    if status == "all":
        status = None
    if status is not None and status not in {"pending", "approved", "rejected", "cancelled"}:
        raise InvalidInput(f"status {status!r} is not pending, approved, rejected, cancelled or all", field="status")
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000", field="limit")
    query = (
        select(ApprovalRequest, RegisteredModel, ModelVersion)
        .join(RegisteredModel, RegisteredModel.id == ApprovalRequest.model_id)
        .join(ModelVersion, ModelVersion.id == ApprovalRequest.version_id)
        .where(ApprovalRequest.project_id == ctx.project_id())
    )
    if status is not None:
        query = query.where(ApprovalRequest.status == status)
    if name is not None:
        query = query.where(RegisteredModel.id == _model(ctx, name).id)
    rows = ctx.session.execute(query.order_by(ApprovalRequest.requested_at.desc()).limit(limit)).all()
    return [_approval_info(ctx, req, model, row) for req, model, row in rows]


def approvals_of_version(ctx: Context, version_id: str) -> list[ApprovalRequest]:
    return list(
        ctx.session.execute(
            select(ApprovalRequest)
            .where(ApprovalRequest.version_id == version_id)
            .order_by(ApprovalRequest.requested_at)
        ).scalars()
    )

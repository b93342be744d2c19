"""Pages of the model registry: the model list, a model's page (versions, lineage, metrics,
timeline), the approval queue, model cards and version comparison.

Thin like every door: each page calls the registry services through the caller; a form
whose call fails shows the page again with the service's message and status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from plinth.core.errors import NotFound, PlinthError
from plinth.core.platform import Caller
from plinth.registry import insights, stages
from plinth.registry import schemas as s
from plinth.registry import service as svc
from plinth.registry.cards import sections
from plinth.server.deps import CallerDep
from plinth.server.ui import Flash, link, render, ui_router

router = ui_router("/models")

CHART_METRICS = 4


def _back(request: Request, path: str, **query: Any) -> RedirectResponse:
    return RedirectResponse(link(request, path, **query), status_code=303)


# --- the list ---------------------------------------------------------------------------------
def _list_page(
    request: Request, caller: Caller, form: dict[str, str] | None = None, error: PlinthError | None = None
) -> Response:
    models = caller.call(svc.list_models)
    pending = caller.call(stages.list_approvals, status="pending")
    context = {
        "models": models,
        "pending": len(pending),
        "form": form or {},
        "flash": [Flash.error(error)] if error else [],
        "stages": s.STAGES,
    }
    return render(request, "registry/list.html", context, status_code=error.http_status if error else 200)


@router.get("")
def models_page(request: Request, caller: CallerDep) -> Response:
    return _list_page(request, caller)


@router.post("")
def create_model(
    request: Request,
    caller: CallerDep,
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
) -> Response:
    try:
        created = caller.call(svc.create_model, name=name.strip(), description=description.strip())
    except PlinthError as exc:
        return _list_page(request, caller, {"name": name, "description": description}, exc)
    return _back(request, f"/models/{created.name}")


# --- the approval queue -----------------------------------------------------------------------
def _approvals_page(request: Request, caller: Caller, error: PlinthError | None = None) -> Response:
    context = {
        "pending": caller.call(stages.list_approvals, status="pending"),
        "decided": [a for a in caller.call(stages.list_approvals, status="all", limit=50) if a.status != "pending"],
        "can_approve": caller.actor.can("approve", caller.project),
        "flash": [Flash.error(error)] if error else [],
    }
    return render(request, "registry/approvals.html", context, status_code=error.http_status if error else 200)


@router.get("/-/approvals")
def approvals_page(request: Request, caller: CallerDep) -> Response:
    return _approvals_page(request, caller)


@router.post("/-/approvals/{request_id}/{decision}")
def decide(
    request: Request,
    request_id: str,
    decision: str,
    caller: CallerDep,
    comment: Annotated[str, Form()] = "",
) -> Response:
    try:
        if decision == "approve":
            caller.call(stages.approve, request_id=request_id, comment=comment.strip() or None)
        elif decision == "reject":
            caller.call(stages.reject, request_id=request_id, comment=comment.strip() or None)
        elif decision == "cancel":
            caller.call(stages.cancel_approval, request_id=request_id)
        else:
            raise NotFound(f"no such decision {decision!r}: approve, reject or cancel")
    except PlinthError as exc:
        return _approvals_page(request, caller, exc)
    return _back(request, "/models/-/approvals")


# --- a model ----------------------------------------------------------------------------------
def _metric_chart(versions: list[s.VersionInfo]) -> dict[str, Any] | None:
    ordered = sorted(versions, key=lambda v: v.version)
    names: list[str] = []
    for v in ordered:
        for key in v.lineage.get("metrics", {}):
            if key not in names and not key.startswith("system/"):
                names.append(key)
    names = names[:CHART_METRICS]
    if not names or len(ordered) < 2:
        return None
    return {
        "kind": "line",
        "x": [v.version for v in ordered],
        "series": [{"label": n, "values": [v.lineage.get("metrics", {}).get(n) for v in ordered]} for n in names],
    }


def _model_page(
    request: Request,
    caller: Caller,
    name: str,
    selected: int | None = None,
    at: str | None = None,
    error: PlinthError | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    detail = caller.call(svc.get_model, name=name)
    version = None
    if detail.versions:
        version = next((v for v in detail.versions if v.version == selected), detail.versions[0])
    lineage = None
    if version is not None:
        try:
            from plinth.data.lineage_graph import lineage as lineage_graph

            lineage = caller.call(lineage_graph, ref=f"models:/{name}/{version.version}", direction="upstream", depth=3)
        except ImportError:
            lineage = None
    flash = [Flash.error(error)] if error else []
    history = None
    if at:
        try:
            history = caller.call(insights.history, name=name, at=at)
        except PlinthError as exc:
            flash.append(Flash.error(exc))
    timeline = caller.call(insights.history, name=name)
    context = {
        "model": detail,
        "version": version,
        "lineage": lineage,
        "chart": _metric_chart(detail.versions),
        "timeline": list(reversed(timeline.events))[:50],
        "history": history,
        "at": at or "",
        "stages": [st for st in s.STAGES if st != "production"],
        "form": form or {},
        "flash": flash,
    }
    return render(request, "registry/model.html", context, status_code=error.http_status if error else 200)


@router.get("/{name}")
def model_page(
    request: Request,
    name: str,
    caller: CallerDep,
    version: Annotated[int | None, Query(ge=1)] = None,
    at: str | None = None,
) -> Response:
    return _model_page(request, caller, name, version, at)


@router.post("/{name}/aliases")
def set_alias(
    request: Request,
    name: str,
    caller: CallerDep,
    alias: Annotated[str, Form()] = "",
    version: Annotated[str, Form()] = "",
) -> Response:
    try:
        caller.call(svc.set_alias, name=name, alias=alias.strip(), version=version.strip())
    except PlinthError as exc:
        return _model_page(request, caller, name, error=exc, form={"alias": alias, "alias_version": version})
    return _back(request, f"/models/{name}")


@router.post("/{name}/versions/{version}/stage")
def transition_stage(
    request: Request,
    name: str,
    version: int,
    caller: CallerDep,
    stage: Annotated[str, Form()] = "",
) -> Response:
    try:
        caller.call(stages.transition_stage, name=name, version=version, stage=stage)
    except PlinthError as exc:
        return _model_page(request, caller, name, version, error=exc)
    return _back(request, f"/models/{name}", version=version)


@router.post("/{name}/versions/{version}/approval")
def request_approval(
    request: Request,
    name: str,
    version: int,
    caller: CallerDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        caller.call(stages.request_approval, name=name, version=version, reason=reason)
    except PlinthError as exc:
        return _model_page(request, caller, name, version, error=exc, form={"reason": reason})
    return _back(request, "/models/-/approvals")


# --- cards and comparison ---------------------------------------------------------------------
def _card_page(
    request: Request, caller: Caller, name: str, ref: str | None, error: PlinthError | None = None, saved: bool = False
) -> Response:
    card = caller.call(insights.get_card, name=name, ref=ref)
    flash = [Flash.error(error)] if error else ([Flash("success", "Card saved.")] if saved else [])
    context = {
        "card": card,
        "sections": sections(card),
        "g": card.generated,
        "ref": ref or "",
        "fields": s.CARD_FIELDS,
        "flash": flash,
    }
    return render(request, "registry/card.html", context, status_code=error.http_status if error else 200)


@router.get("/{name}/card")
def card_page(request: Request, name: str, caller: CallerDep, ref: str | None = None, saved: bool = False) -> Response:
    return _card_page(request, caller, name, ref or None, saved=saved)


@router.post("/{name}/card")
async def update_card(request: Request, name: str, caller: CallerDep) -> Response:
    form = await request.form()
    fields = {k: str(form.get(k, "")) for k in s.CARD_FIELDS if k in form}
    ref = str(form.get("ref") or "") or None
    from starlette.concurrency import run_in_threadpool

    try:
        await run_in_threadpool(caller.call, insights.update_card, name=name, fields=fields, ref=ref)
    except PlinthError as exc:
        return await run_in_threadpool(_card_page, request, caller, name, ref, exc)
    return _back(request, f"/models/{name}/card", ref=ref, saved="true")


@router.get("/{name}/compare")
def compare_page(
    request: Request,
    name: str,
    caller: CallerDep,
    versions: Annotated[list[int] | None, Query()] = None,
) -> Response:
    detail = caller.call(svc.get_model, name=name)
    chosen = versions or [v.version for v in detail.versions[:2]]
    comparison = caller.call(insights.compare_versions, name=name, versions=chosen) if chosen else None
    return render(request, "registry/compare.html", {"model": detail, "comparison": comparison, "chosen": chosen})

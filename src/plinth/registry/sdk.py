"""SDK functions of the model registry; embedded or remote by ``PLINTH_URI``.

>>> import plinth
>>> v = plinth.registry.register_model("churn", "runs:/<run_id>/model")        # doctest: +SKIP
>>> req = plinth.registry.request_approval("churn", v.version, reason="beats v1 on AUC")  # doctest: +SKIP
>>> plinth.registry.approve(req.id)          # as another user with the approver capability  # doctest: +SKIP
>>> plinth.registry.set_alias("churn", "champion", v.version)                  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime

from plinth.core.ops import call
from plinth.registry import insights, stages
from plinth.registry import schemas as s
from plinth.registry import service as svc

__all__ = [
    "approve",
    "cancel_approval",
    "compare_versions",
    "create_model",
    "delete_alias",
    "get_card",
    "get_model",
    "get_version",
    "history",
    "list_approvals",
    "list_models",
    "list_versions",
    "register_model",
    "reject",
    "render_card",
    "request_approval",
    "resolve",
    "set_alias",
    "transition_stage",
    "update_card",
    "update_model",
    "update_version",
]


def create_model(
    name: str,
    description: str = "",
    owner: str | None = None,
    tags: dict[str, str] | None = None,
    project: str | None = None,
) -> s.ModelInfo:
    """Create a registered model; ``register_model`` creates it on first use too."""
    return call(
        s.CREATE_MODEL, svc.create_model, project=project, name=name, description=description, owner=owner, tags=tags
    )


def list_models(project: str | None = None) -> list[s.ModelInfo]:
    return call(s.LIST_MODELS, svc.list_models, project=project)


def get_model(name: str, project: str | None = None) -> s.ModelDetail:
    return call(s.GET_MODEL, svc.get_model, project=project, name=name)


def update_model(
    name: str,
    description: str | None = None,
    owner: str | None = None,
    tags: dict[str, str] | None = None,
    project: str | None = None,
) -> s.ModelInfo:
    return call(
        s.UPDATE_MODEL, svc.update_model, project=project, name=name, description=description, owner=owner, tags=tags
    )


def register_model(
    name: str, source: str, description: str = "", tags: dict[str, str] | None = None, project: str | None = None
) -> s.VersionInfo:
    """Register the model at ``source`` (``runs:/<run_id>/<path>``) as the next version of ``name``.

    Lineage (the run, its params, metrics, datasets and code version) is recorded with it.
    """
    return call(
        s.REGISTER_VERSION,
        svc.register_version,
        project=project,
        name=name,
        source=source,
        description=description,
        tags=tags,
    )


def list_versions(name: str, stage: str | None = None, project: str | None = None) -> list[s.VersionInfo]:
    return call(s.LIST_VERSIONS, svc.list_versions, project=project, name=name, stage=stage)


def get_version(name: str, version: int, project: str | None = None) -> s.VersionInfo:
    return call(s.GET_VERSION, svc.get_version, project=project, name=name, version=version)


def update_version(
    name: str,
    version: int,
    description: str | None = None,
    tags: dict[str, str] | None = None,
    project: str | None = None,
) -> s.VersionInfo:
    return call(
        s.UPDATE_VERSION,
        svc.update_version,
        project=project,
        name=name,
        version=version,
        description=description,
        tags=tags,
    )


def resolve(ref: str, project: str | None = None) -> s.VersionInfo:
    """The version ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` names."""
    return call(s.RESOLVE, svc.resolve, project=project, ref=ref)


def set_alias(name: str, alias: str, version: int, project: str | None = None) -> s.VersionInfo:
    """Point ``models:/<name>@<alias>`` at ``version`` (moved atomically if it pointed elsewhere)."""
    return call(s.SET_ALIAS, svc.set_alias, project=project, name=name, alias=alias, version=version)


def delete_alias(name: str, alias: str, project: str | None = None) -> None:
    call(s.DELETE_ALIAS, svc.delete_alias, project=project, name=name, alias=alias)


def transition_stage(
    name: str, version: int, stage: str, comment: str | None = None, project: str | None = None
) -> s.VersionInfo:
    """Move a version to development, staging or archived; production goes through approval."""
    return call(
        s.TRANSITION_STAGE,
        stages.transition_stage,
        project=project,
        name=name,
        version=version,
        stage=stage,
        comment=comment,
    )


def request_approval(
    name: str, version: int, reason: str, stage: str = "production", project: str | None = None
) -> s.ApprovalInfo:
    """Ask for ``version`` to go to production, saying why; another approver decides."""
    return call(
        s.REQUEST_APPROVAL,
        stages.request_approval,
        project=project,
        name=name,
        version=version,
        reason=reason,
        stage=stage,
    )


def list_approvals(
    status: str = "pending", name: str | None = None, project: str | None = None
) -> list[s.ApprovalInfo]:
    """Approval requests, newest first; ``status`` is pending, approved, rejected, cancelled or all."""
    return call(s.LIST_APPROVALS, stages.list_approvals, project=project, status=status, name=name)


def approve(request_id: str, comment: str | None = None, project: str | None = None) -> s.ApprovalInfo:
    """Approve a request (approvers only, never one's own): the version goes to production."""
    return call(s.APPROVE, stages.approve, project=project, request_id=request_id, comment=comment)


def reject(request_id: str, comment: str | None = None, project: str | None = None) -> s.ApprovalInfo:
    return call(s.REJECT, stages.reject, project=project, request_id=request_id, comment=comment)


def cancel_approval(request_id: str, project: str | None = None) -> s.ApprovalInfo:
    return call(s.CANCEL_APPROVAL, stages.cancel_approval, project=project, request_id=request_id)


def history(name: str, at: datetime | str | None = None, project: str | None = None) -> s.ModelHistory:
    """Which version each alias named, and which was in production, at ``at`` (from the event log)."""
    if isinstance(at, str):
        at = insights.parse_moment(at)
    return call(s.HISTORY, insights.history, project=project, name=name, at=at)


def compare_versions(name: str, versions: list[int], project: str | None = None) -> s.VersionComparison:
    return call(s.COMPARE, insights.compare_versions, project=project, name=name, versions=list(versions))


def get_card(name: str, ref: str | int | None = None, project: str | None = None) -> s.ModelCard:
    """The model card of a version (``ref``: a number or an alias; production or latest by default)."""
    return call(s.GET_CARD, insights.get_card, project=project, name=name, ref=None if ref is None else str(ref))


def update_card(
    name: str, fields: dict[str, str], ref: str | int | None = None, project: str | None = None
) -> s.ModelCard:
    """Write card fields: purpose, intended_use, limitations, ethical_considerations..."""
    return call(
        s.UPDATE_CARD,
        insights.update_card,
        project=project,
        name=name,
        fields=fields,
        ref=None if ref is None else str(ref),
    )


def render_card(name: str, ref: str | int | None = None, format: str = "md", project: str | None = None) -> str:
    """The model card as Markdown (``md``) or a standalone HTML page (``html``)."""
    from plinth.core.errors import InvalidInput
    from plinth.registry.cards import card_html, card_markdown

    if format not in {"md", "html"}:
        raise InvalidInput(f"format {format!r} is not md or html", field="format")
    card = get_card(name, ref, project=project)
    return card_markdown(card) if format == "md" else card_html(card)

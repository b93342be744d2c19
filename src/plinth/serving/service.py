"""Deployments: which model versions a server runs, with which traffic policy.

A deployment's traffic is a weight per model reference (a canary when several), plus an
optional shadow whose answers are logged and never returned, and an optional sticky key:
requests carrying the same value of it always reach the same version (sticky A/B). It may
carry features (a feature service or ``view:feature`` references, what ``plinth serve
--features`` takes) that its server fills from the online store by the request's entity keys,
with a policy for entities that have no online value (``error`` or ``null``). A
policy the runtime cannot honour (weights not adding up to 100, one version twice, a
shadow that also takes traffic) is refused here.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plinth.core.context import Context
from plinth.core.errors import Conflict, InvalidInput
from plinth.core.ids import new_id
from plinth.core.names import validate_name
from plinth.serving import schemas as s
from plinth.serving.resources import validate_resources
from plinth.serving.tables import Deployment, project_row

MAX_REPLICAS = 100
STICKY_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]{0,99}")


def _resolve(ctx: Context, uri: object, what: str) -> tuple[str, int]:
    """(registered model, version) of a models:/ reference, which must exist."""
    from plinth.core.uris import parse_reference
    from plinth.registry import service as registry

    if not isinstance(uri, str):
        raise InvalidInput(f"{what} must be a models:/ reference", field=what)
    ref = parse_reference(uri, {"models"})
    if ref.version is None and ref.alias is None:
        raise InvalidInput(f"{what} {uri!r} names a model, not a version: add /<version> or @<alias>", field=what)
    version = registry.resolve(ctx, uri)
    return version.name, version.version


def _traffic(ctx: Context, models: object) -> list[dict[str, Any]]:
    if isinstance(models, str):
        models = {models: 100}
    elif isinstance(models, list):
        if len(models) != 1:
            raise InvalidInput(
                "several models need a weight each, e.g. {'models:/churn/1': 90, 'models:/churn/2': 10}",
                field="models",
            )
        models = {models[0]: 100}
    if not isinstance(models, dict) or not models:
        raise InvalidInput("models must map each models:/ reference to a weight", field="models")
    seen: dict[tuple[str, int], str] = {}
    for uri, weight in models.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise InvalidInput(f"the weight of {uri!r} must be a whole number from 0 to 100", field="models")
        key = _resolve(ctx, uri, "model")
        if key in seen:
            raise InvalidInput(
                f"{uri!r} and {seen[key]!r} are the same version ({key[0]} {key[1]}): a canary needs distinct versions",
                field="models",
            )
        seen[key] = uri
    names = {name for name, _ in seen}
    if len(names) > 1:
        raise InvalidInput(
            f"a canary splits traffic between versions of one model, not {', '.join(sorted(names))}", field="models"
        )
    total = sum(models.values())
    if total != 100:
        raise InvalidInput(f"traffic weights add up to {total}, not 100", field="models")
    return [{"uri": uri, "weight": weight} for uri, weight in models.items()]


def _shadow(ctx: Context, shadow: object, traffic: list[dict[str, Any]]) -> str | None:
    if shadow is None:
        return None
    key = _resolve(ctx, shadow, "shadow")
    for split in traffic:
        if _resolve(ctx, split["uri"], "model") == key:
            raise InvalidInput(f"the shadow {shadow!r} is also serving traffic; shadow another version", field="shadow")
    return str(shadow)


def _sticky_key(value: object) -> str | None:
    """The request key of a sticky A/B split: a parameter or header name."""
    if value is None:
        return None
    if not isinstance(value, str) or not STICKY_KEY.fullmatch(value):
        raise InvalidInput(
            f"sticky key {value!r} must be 1-100 letters, digits, '_', '-' or '.', starting with a letter",
            field="sticky_key",
        )
    return value


def _replicas(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_REPLICAS:
        raise InvalidInput(f"replicas must be a whole number from 1 to {MAX_REPLICAS}", field="replicas")
    return value


def _features(ctx: Context, features: object) -> list[str] | None:
    """The feature references of a deployment, checked against the feature registry."""
    from plinth.features.service import resolve_features
    from plinth.serving.enrich import parse_feature_refs

    if features is None:
        return None
    if isinstance(features, str):
        features = [features]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InvalidInput("features must be features:/SERVICE or a list of view:feature references", field="features")
    names, service = parse_feature_refs(features)
    resolve_features(ctx, names, feature_service=service)  # an unknown service, view or feature: refused here
    return [service] if service is not None else names


def _missing_features(value: object) -> str:
    from plinth.serving.enrich import MISSING

    if value not in MISSING:
        raise InvalidInput(
            f"missing_features must be one of {', '.join(MISSING)}, not {value!r}", field="missing_features"
        )
    return str(value)


def _info(ctx: Context, row: Deployment) -> s.DeploymentInfo:
    return s.DeploymentInfo(
        id=row.id,
        project=ctx.project,
        name=row.name,
        traffic=[s.TrafficSplit(**t) for t in row.traffic],
        shadow=row.shadow,
        sticky_key=row.sticky_key,
        replicas=row.replicas,
        features=row.features,
        missing_features=row.missing_features or "error",
        resources=row.resources,
        status=row.status,  # type: ignore[arg-type]
        status_message=row.status_message,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def _get(ctx: Context, name: str) -> Deployment:
    return project_row(ctx, Deployment, "deployment", "name", name)


def _summary(row: Deployment) -> dict[str, Any]:
    return {
        "traffic": row.traffic,
        "shadow": row.shadow,
        "sticky_key": row.sticky_key,
        "replicas": row.replicas,
        "features": row.features,
        "missing_features": row.missing_features,
        "resources": row.resources,
        "status": row.status,
    }


def create_deployment(
    ctx: Context,
    name: str,
    models: dict[str, int] | list[str] | str,
    shadow: str | None = None,
    replicas: int = 1,
    sticky_key: str | None = None,
    description: str = "",
    features: list[str] | str | None = None,
    missing_features: str = "error",
    resources: dict[str, dict[str, str]] | None = None,
) -> s.DeploymentInfo:
    """Create a deployment of ``models`` (a reference, or a weight per reference for a canary);
    ``features`` are filled from the online store by the request's entity keys when it serves;
    ``resources`` (Kubernetes' requests and limits) go into its cluster manifests."""
    ctx.require("write")
    validate_name(name, "deployment name")
    traffic = _traffic(ctx, models)
    now = ctx.now()
    row = Deployment(
        id=new_id(),
        project_id=ctx.project_id(),
        name=name,
        traffic=traffic,
        shadow=_shadow(ctx, shadow, traffic),
        sticky_key=_sticky_key(sticky_key),
        replicas=_replicas(replicas),
        features=_features(ctx, features),
        missing_features=_missing_features(missing_features),
        resources=validate_resources(resources),
        status="created",
        status_message="",
        description=str(description)[:5000],
        created_at=now,
        created_by=ctx.actor.name,
        updated_at=now,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(row)
            ctx.session.flush()
    except IntegrityError:
        raise Conflict(f"deployment {name!r} already exists in project {ctx.project!r}", deployment=name) from None
    ctx.emit("deployment.create", f"deployments:/{name}", _summary(row))
    return _info(ctx, row)


def list_deployments(ctx: Context) -> list[s.DeploymentInfo]:
    ctx.require("read")
    rows = ctx.session.execute(
        select(Deployment).where(Deployment.project_id == ctx.project_id()).order_by(Deployment.name)
    ).scalars()
    return [_info(ctx, row) for row in rows]


def get_deployment(ctx: Context, name: str) -> s.DeploymentInfo:
    ctx.require("read")
    return _info(ctx, _get(ctx, name))


def update_deployment(
    ctx: Context,
    name: str,
    models: dict[str, int] | list[str] | str | None = None,
    shadow: str | None = None,
    clear_shadow: bool = False,
    replicas: int | None = None,
    status: str | None = None,
    status_message: str | None = None,
    description: str | None = None,
    sticky_key: str | None = None,
    clear_sticky_key: bool = False,
    features: list[str] | str | None = None,
    clear_features: bool = False,
    missing_features: str | None = None,
    resources: dict[str, dict[str, str]] | None = None,
    clear_resources: bool = False,
) -> s.DeploymentInfo:
    """Change a deployment's traffic, shadow, sticky key, features, resources, replicas, status or
    description (``resources`` replaces the requests and limits as a whole)."""
    ctx.require("write")
    row = _get(ctx, name)
    before = _summary(row)
    if models is not None:
        row.traffic = _traffic(ctx, models)
    if clear_shadow:
        row.shadow = None
    elif shadow is not None or models is not None:
        row.shadow = _shadow(ctx, shadow if shadow is not None else row.shadow, row.traffic)
    if clear_sticky_key:
        row.sticky_key = None
    elif sticky_key is not None:
        row.sticky_key = _sticky_key(sticky_key)
    if clear_features:
        row.features = None
    elif features is not None:
        row.features = _features(ctx, features)
    if missing_features is not None:
        row.missing_features = _missing_features(missing_features)
    if clear_resources:
        row.resources = None
    elif resources is not None:
        row.resources = validate_resources(resources)
    if replicas is not None:
        row.replicas = _replicas(replicas)
    if status is not None:
        if status not in s.STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(s.STATUSES)}", field="status")
        row.status = status
        row.status_message = str(status_message or "")[:5000]
    if description is not None:
        row.description = str(description)[:5000]
    row.updated_at = ctx.now()
    ctx.emit("deployment.update", f"deployments:/{name}", {"before": before, "after": _summary(row)})
    return _info(ctx, row)


def delete_deployment(ctx: Context, name: str) -> None:
    ctx.require("write")
    row = _get(ctx, name)
    ctx.session.delete(row)
    ctx.emit("deployment.delete", f"deployments:/{name}", _summary(row))


def inference_log_location(ctx: Context, name: str) -> s.InferenceLogInfo:
    """Where the inference log of a deployment lives: a Delta table the platform addresses by ids."""
    ctx.require("read")
    row = _get(ctx, name)
    location = ctx.stores.tables.location(row.project_id, "inference_log", row.id)
    ctx.stores.tables.prepare(location)
    return s.InferenceLogInfo(deployment=name, location=location)

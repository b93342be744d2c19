"""The feature catalog: every feature with its owner, description, tags, dtype, freshness,
statistics (from the source dataset's profile) and usage (services, training sets, runs,
models), searchable; and the detail of a feature view or service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from plinth.core.context import Context
from plinth.core.errors import InvalidInput, NotFound
from plinth.features import schemas as s
from plinth.features import service as registry
from plinth.features.naming import closest, split_ref
from plinth.features.tables import FeatureDefinition, FeatureOnlineWrite, TrainingSet

__all__ = ["feature_detail", "freshness", "list_features", "service_detail", "view_detail"]

MAX_RESULTS = 1000


def _features_of(row: FeatureDefinition, entities: dict[str, list[str]]) -> list[s.FeatureInfo]:
    spec = row.spec
    out = []
    if row.kind == "feature_view":
        ents = list(spec["entities"])
        keys = [k for e in ents for k in entities.get(e, [])]
        for f in spec["schema"]:
            out.append(
                s.FeatureInfo(
                    ref=f"{row.name}:{f['name']}",
                    view=row.name,
                    name=f["name"],
                    dtype=f["dtype"],
                    kind="feature_view",
                    view_version=row.latest_version,
                    entities=ents,
                    join_keys=keys,
                    owner=spec.get("owner", ""),
                    description=f.get("description") or "",
                    tags={**(spec.get("tags") or {}), **(f.get("tags") or {})},
                    ttl_seconds=spec.get("ttl_seconds"),
                    online=bool(spec.get("online", True)),
                    source=spec["source"]["uri"],
                )
            )
    elif row.kind == "on_demand_feature_view":
        sources = [src.get("feature_view") or f"request:{src.get('request')}" for src in spec["sources"]]
        for f in spec["schema"]:
            out.append(
                s.FeatureInfo(
                    ref=f"{row.name}:{f['name']}",
                    view=row.name,
                    name=f["name"],
                    dtype=f["dtype"],
                    kind="on_demand_feature_view",
                    view_version=row.latest_version,
                    owner=spec.get("owner", ""),
                    description=f.get("description") or "",
                    tags={**(spec.get("tags") or {}), **(f.get("tags") or {})},
                    online=True,
                    source="on demand from " + ", ".join(sources),
                )
            )
    return out


def _entities(rows: list[FeatureDefinition]) -> dict[str, list[str]]:
    return {r.name: list(r.spec["join_keys"]) for r in rows if r.kind == "entity"}


def _matches(info: s.FeatureInfo, words: list[str]) -> bool:
    text = " ".join(
        [info.ref, info.description, info.owner, info.dtype, info.source, *info.entities]
        + [f"{k}:{v}" for k, v in info.tags.items()]
        + list(info.tags)
    ).lower()
    return all(w in text for w in words)


def list_features(ctx: Context, query: str | None = None, limit: int = MAX_RESULTS) -> list[s.FeatureInfo]:
    """Every feature (of views and on-demand views), or those matching all words of ``query``
    (in the name, description, owner, tags, dtype, source or entities), with freshness."""
    ctx.require("read")
    if query is not None and (not isinstance(query, str) or len(query) > 500):
        raise InvalidInput("query must be text of at most 500 characters", field="query")
    rows = registry._rows(ctx)
    entities = _entities(rows)
    words = [w for w in (query or "").lower().split() if w]
    fresh = {f.view: f for f in freshness(ctx)}
    out = []
    for row in rows:
        for info in _features_of(row, entities):
            if words and not _matches(info, words):
                continue
            info.freshness = fresh.get(info.view)
            out.append(info)
    return out[: max(1, min(limit, MAX_RESULTS))]


def _view_rows(ctx: Context) -> dict[str, FeatureDefinition]:
    return {r.name: r for r in registry._rows(ctx) if r.kind == "feature_view"}


def freshness(ctx: Context) -> list[s.Freshness]:
    """Per feature view: the last online write, how far it reached, and its lag behind now."""
    ctx.require("read")
    views = _view_rows(ctx)
    if not views:
        return []
    latest = (
        select(FeatureOnlineWrite.view_id, func.max(FeatureOnlineWrite.created_at).label("at"))
        .where(FeatureOnlineWrite.project_id == ctx.project_id())
        .group_by(FeatureOnlineWrite.view_id)
        .subquery()
    )
    last = {
        w.view_id: w
        for w in ctx.session.execute(
            select(FeatureOnlineWrite).join(
                latest,
                (latest.c.view_id == FeatureOnlineWrite.view_id) & (latest.c.at == FeatureOnlineWrite.created_at),
            )
        ).scalars()
    }
    reached = dict(
        ctx.session.execute(
            select(FeatureOnlineWrite.view_id, func.max(FeatureOnlineWrite.max_event_ts))
            .where(FeatureOnlineWrite.project_id == ctx.project_id())
            .group_by(FeatureOnlineWrite.view_id)
        ).all()
    )
    until = dict(
        ctx.session.execute(
            select(FeatureOnlineWrite.view_id, func.max(FeatureOnlineWrite.end_ts))
            .where(FeatureOnlineWrite.project_id == ctx.project_id(), FeatureOnlineWrite.kind == "materialize")
            .group_by(FeatureOnlineWrite.view_id)
        ).all()
    )
    now = ctx.now()
    out = []
    for name, row in sorted(views.items()):
        w = last.get(row.id)
        newest = _aware(reached.get(row.id))
        out.append(
            s.Freshness(
                view=name,
                online=bool(row.spec.get("online", True)),
                last_write_at=w.created_at if w else None,
                last_write_kind=w.kind if w else None,
                materialized_until=_aware(until.get(row.id)),
                max_event_ts=newest,
                lag_seconds=round((now - newest).total_seconds(), 3) if newest else None,
            )
        )
    return out


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _statistics(ctx: Context, view: FeatureDefinition, feature: str) -> dict[str, Any] | None:
    """The column's profile from the dataset version the view was applied against."""
    from plinth.data.schemas import Profile
    from plinth.data.service import resolve

    uri = view.spec["source"]["uri"]
    if not uri.startswith("datasets:/"):
        return None
    source_ref = registry.resolved_of(ctx, view).get("source_ref") or uri
    try:
        _dataset, version = resolve(ctx, source_ref)
    except (NotFound, InvalidInput):
        return None
    if version.profile is None:
        return None
    profile = Profile.model_validate(version.profile)
    for col in profile.columns:
        if col.name == feature:
            stats = col.model_dump(mode="json", exclude={"histogram", "top"})
            stats["dataset"] = source_ref
            return stats  # type: ignore[no-any-return]
    return None


def _usage(ctx: Context, refs: set[str], view_names: set[str]) -> s.Usage:
    services = sorted(
        r.name for r in registry._rows(ctx) if r.kind == "feature_service" and refs.intersection(r.spec["features"])
    )
    sets = list(
        ctx.session.execute(
            select(TrainingSet)
            .where(TrainingSet.project_id == ctx.project_id())
            .order_by(TrainingSet.created_at.desc())
        ).scalars()
    )
    used = [t for t in sets if refs.intersection(t.features)]
    runs = sorted({t.run_id for t in used if t.run_id})
    models: list[str] = []
    if runs:
        try:
            from plinth.registry.tables import ModelVersion, RegisteredModel

            models = sorted(
                f"models:/{name}/{version}"
                for name, version in ctx.session.execute(
                    select(RegisteredModel.name, ModelVersion.version)
                    .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
                    .where(ModelVersion.run_id.in_(runs))
                ).all()
            )
        except ImportError:  # pragma: no cover - the registry ships with Plinth
            models = []
    return s.Usage(
        services=services,
        training_sets=list(dict.fromkeys(t.dataset_ref for t in used)),
        runs=[f"runs:/{r}" for r in runs],
        models=models,
    )


def feature_detail(ctx: Context, ref: str) -> s.FeatureInfo:
    """One feature (``view:feature``) with freshness, statistics and usage."""
    ctx.require("read")
    view, feat = split_ref(ref)
    rows = registry._rows(ctx)
    by_name = {r.name: r for r in rows if r.namespace == "features" and r.kind != "feature_service"}
    entities = _entities(rows)
    row = by_name.get(view)
    infos = {i.ref: i for r in by_name.values() for i in _features_of(r, entities)}
    info = infos.get(f"{view}:{feat}")
    if row is None or info is None:
        raise NotFound(f"unknown feature {ref!r}{closest(ref, sorted(infos))}", feature=ref)
    info.freshness = next((f for f in freshness(ctx) if f.view == view), None)
    if row.kind == "feature_view":
        info.statistics = _statistics(ctx, row, feat)
    info.usage = _usage(ctx, {info.ref}, {view})
    return info


def view_detail(ctx: Context, name: str) -> s.FeatureViewDetail:
    ctx.require("read")
    row = registry._find(ctx, ("feature_view", "on_demand_feature_view"), name)
    rows = registry._rows(ctx)
    features = _features_of(row, _entities(rows))
    refs = {f.ref for f in features}
    services = sorted(r.name for r in rows if r.kind == "feature_service" and refs.intersection(r.spec["features"]))
    writes = ctx.session.execute(
        select(FeatureOnlineWrite)
        .where(FeatureOnlineWrite.view_id == row.id)
        .order_by(FeatureOnlineWrite.created_at.desc())
        .limit(20)
    ).scalars()
    from plinth.features.online import write_info

    return s.FeatureViewDetail(
        definition=registry.definition_info(row),
        features=features,
        versions=registry.definition_versions(ctx, row),
        freshness=next((f for f in freshness(ctx) if f.view == name), None),
        services=services,
        writes=[write_info(w, name) for w in writes],
    )


def service_detail(ctx: Context, name: str) -> s.FeatureServiceDetail:
    ctx.require("read")
    if name.startswith("features:/"):
        name = name[len("features:/") :]
    row = registry._find(ctx, "feature_service", name)
    rows = registry._rows(ctx)
    entities = _entities(rows)
    infos = {i.ref: i for r in rows if r.namespace == "features" for i in _features_of(r, entities)}
    features = [infos[r] for r in row.spec["features"] if r in infos]
    usage = _usage(ctx, set(row.spec["features"]), set())
    sets = list(
        ctx.session.execute(
            select(TrainingSet.dataset_ref, TrainingSet.run_id).where(
                TrainingSet.project_id == ctx.project_id(), TrainingSet.feature_service == name
            )
        ).all()
    )
    usage.training_sets = list(dict.fromkeys([*usage.training_sets, *(d for d, _ in sets)]))
    return s.FeatureServiceDetail(
        definition=registry.definition_info(row),
        features=features,
        versions=registry.definition_versions(ctx, row),
        usage=usage,
    )

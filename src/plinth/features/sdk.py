"""SDK functions of the features area; embedded or remote by ``PLINTH_URI``.

Definitions travel as their JSON specs; entity frames and pushed rows as Arrow IPC
streams; historical results come back as an Arrow IPC stream.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from plinth.client.backend import current_backend
from plinth.core.errors import InvalidInput
from plinth.core.ops import Operation, call
from plinth.features import catalog
from plinth.features import schemas as s
from plinth.features import service as svc
from plinth.features.definitions import Definition, Entity, FeatureService, FeatureView, OnDemandFeatureView

__all__ = [
    "apply",
    "create_training_set",
    "freshness",
    "get_entity",
    "get_feature",
    "get_feature_service",
    "get_feature_view",
    "get_historical_features",
    "get_online_features",
    "list_entities",
    "list_feature_services",
    "list_feature_views",
    "list_features",
    "load_repo",
    "materialize",
    "materialize_incremental",
    "plan",
    "push",
    "search_features",
]


# --- definitions ----------------------------------------------------------------------------------
def _objects(objects: Any) -> list[Definition]:
    """Definitions from a list of objects or a feature repository path; entities used inline added."""
    if isinstance(objects, str | Path):
        from plinth.features.repo import load_repo as _load

        objects = _load(objects).objects
    if isinstance(objects, Definition):
        objects = [objects]
    if not isinstance(objects, Iterable):
        raise InvalidInput("objects must be a list of definitions or a feature repository folder", field="objects")
    out: list[Definition] = []
    for obj in objects:
        if not isinstance(obj, Entity | FeatureView | OnDemandFeatureView | FeatureService):
            raise InvalidInput(
                f"{obj!r} is not an Entity, FeatureView, OnDemandFeatureView or FeatureService", field="objects"
            )
        if isinstance(obj, FeatureView):
            out.extend(e for e in obj.entities if isinstance(e, Entity))
        if isinstance(obj, OnDemandFeatureView):
            out.extend(v for v in obj.sources if isinstance(v, FeatureView))
        out.append(obj)
    unique: dict[tuple[str, str], Definition] = {}
    for obj in out:
        key = ("entities" if isinstance(obj, Entity) else "features", obj.name)  # type: ignore[attr-defined]
        if key in unique and unique[key] != obj:
            raise InvalidInput(f"two different definitions are named {obj.name!r}", field="objects")  # type: ignore[attr-defined]
        unique.setdefault(key, obj)
    return list(unique.values())


def _specs(objects: Any) -> tuple[list[dict[str, Any]], list[Definition]]:
    objs = _objects(objects)
    return [o.to_spec() for o in objs], objs


def plan(objects: Any, prune: bool = False, project: str | None = None) -> s.Plan:
    """What :func:`apply` would change (``objects``: definitions, or a repository folder)."""
    specs, _ = _specs(objects)
    return call(s.PLAN, svc.plan, project=project, objects=specs, prune=prune)


def apply(objects: Any, prune: bool = False, project: str | None = None) -> s.ApplyResult:
    """Store definitions as new versions where they changed (audited); ``prune`` removes the
    registry's definitions that are not among ``objects``.

    >>> import plinth
    >>> from plinth.features import Entity
    >>> plinth.features.apply([Entity(name="driver", join_keys=["driver_id"])]).plan.summary()
    {'create': 1}
    """
    from plinth.features.ondemand import register

    specs, objs = _specs(objects)
    result = call(s.APPLY, svc.apply, project=project, objects=specs, prune=prune)
    for obj in objs:
        if isinstance(obj, OnDemandFeatureView):
            register(obj)
    return result


def load_repo(path: str | Path = ".") -> list[Definition]:
    """The definitions of a feature repository folder (its on-demand functions become usable here)."""
    from plinth.features.repo import load_repo as _load

    return _load(path).objects


def list_entities(project: str | None = None) -> list[s.DefinitionInfo]:
    return call(s.LIST_DEFINITIONS, svc.list_definitions, project=project, kind="entity")


def list_feature_views(project: str | None = None) -> list[s.DefinitionInfo]:
    """Feature views and on-demand feature views."""
    return call(s.LIST_VIEWS, _views, project=project)


def _views(ctx: Any) -> list[s.DefinitionInfo]:
    return [d for d in svc.list_definitions(ctx) if d.kind in {"feature_view", "on_demand_feature_view"}]


def list_feature_services(project: str | None = None) -> list[s.DefinitionInfo]:
    return call(s.LIST_SERVICES, svc.list_definitions, project=project, kind="feature_service")


def get_entity(name: str, project: str | None = None) -> s.DefinitionInfo:
    return call(s.GET_ENTITY, svc.get_definition, project=project, kind="entity", name=name)


def get_feature_view(name: str, project: str | None = None) -> s.FeatureViewDetail:
    return call(s.GET_VIEW, catalog.view_detail, project=project, name=name)


def get_feature_service(name: str, project: str | None = None) -> s.FeatureServiceDetail:
    return call(s.GET_SERVICE, catalog.service_detail, project=project, name=name)


def list_features(query: str | None = None, project: str | None = None) -> list[s.FeatureInfo]:
    """The feature catalog (every feature with owner, dtype, tags, freshness)."""
    return call(s.LIST_FEATURES, catalog.list_features, project=project, query=query)


def search_features(query: str, project: str | None = None) -> list[s.FeatureInfo]:
    """Features whose name, description, owner, tags, dtype or source hold every word of ``query``."""
    return list_features(query, project=project)


def get_feature(ref: str, project: str | None = None) -> s.FeatureInfo:
    """One feature (``view:feature``) with freshness, statistics and usage."""
    return call(s.GET_FEATURE, catalog.feature_detail, project=project, ref=ref)


def freshness(project: str | None = None) -> list[s.Freshness]:
    return call(s.FRESHNESS, catalog.freshness, project=project)


# --- offline ------------------------------------------------------------------------------------
def _target(features: Any, feature_service: Any) -> tuple[list[str] | None, str | None]:
    """Feast lets ``features`` be a FeatureService; so does Plinth."""
    if isinstance(feature_service, FeatureService):
        feature_service = feature_service.name
    if isinstance(features, FeatureService):
        return None, features.name
    if isinstance(features, str) and features.startswith("features:/"):
        return None, features
    if isinstance(features, FeatureView | OnDemandFeatureView):
        features = features.features
    if isinstance(features, list | tuple):
        flat: list[str] = []
        for f in features:
            flat.extend(
                f.features if isinstance(f, FeatureView | OnDemandFeatureView) else f if isinstance(f, list) else [f]
            )
        features = flat
    return features, feature_service


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _query(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def get_historical_features(
    entity_df: Any,
    features: Any = None,
    feature_service: Any = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
    output: str = "arrow",
    project: str | None = None,
) -> Any:
    """Point-in-time correct feature values for every row of ``entity_df`` (Arrow or pandas).

    For each row and feature: the newest value with event time <= the row's timestamp and
    no older than the view's ttl (boundaries included); ties on event time go to the newest
    ``created``; nulls where nothing is in the window. Naive timestamps are UTC.
    """
    from plinth.features.offline import as_arrow
    from plinth.features.retrieval import get_historical_features as service

    if output not in {"arrow", "pandas"}:
        raise InvalidInput("output must be 'arrow' or 'pandas'", field="output")
    features, feature_service = _target(features, feature_service)
    backend = current_backend()
    params = {
        "features": features,
        "feature_service": feature_service,
        "full_feature_names": full_feature_names,
        "timestamp_column": timestamp_column,
    }
    if not backend.remote:
        table = backend.call(s.HISTORICAL, service, project=project, entity_df=entity_df, **params)
    else:
        body = _ipc(as_arrow(entity_df))
        response = backend.http.request(  # type: ignore[attr-defined]
            "POST", s.HISTORICAL.path, params=_query({**params, "project": project}), content=body
        )
        table = pa.ipc.open_stream(io.BytesIO(response.content)).read_all()
    return table.to_pandas() if output == "pandas" else table


def _active_run_id() -> str | None:
    try:
        from plinth.tracking import active_run
    except ImportError:  # pragma: no cover - tracking ships with Plinth
        return None
    run = active_run()
    return getattr(run, "id", None) if run is not None else None


def _upload(op: Operation, fn: Any, data: pa.Table, project: str | None, params: dict[str, Any]) -> Any:
    backend = current_backend()
    return backend.upload(op, fn, project=project, content=[_ipc(data)], **_query(params))


def create_training_set(
    name: str,
    entity_df: Any,
    features: Any = None,
    feature_service: Any = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
    run_id: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
    project: str | None = None,
) -> s.TrainingSetInfo:
    """Write the point-in-time join as the next version of dataset ``name``, with lineage to
    the feature views and source versions (and to the active run, inside ``start_run``)."""
    from plinth.features.offline import as_arrow
    from plinth.features.retrieval import create_training_set as service

    features, feature_service = _target(features, feature_service)
    params: dict[str, Any] = {
        "name": name,
        "features": features,
        "feature_service": feature_service,
        "full_feature_names": full_feature_names,
        "timestamp_column": timestamp_column,
        "run_id": run_id or _active_run_id(),
        "description": description,
        "tags": tags,
    }
    backend = current_backend()
    if not backend.remote:
        return backend.call(s.TRAINING_SET, service, project=project, entity_df=entity_df, **params)  # type: ignore[no-any-return]
    return _upload(s.TRAINING_SET, service, as_arrow(entity_df), project, params)  # type: ignore[no-any-return]


# --- online -------------------------------------------------------------------------------------
def materialize(
    start: datetime | None, end: datetime, views: list[str] | None = None, project: str | None = None
) -> s.MaterializeResult:
    """Copy each online view's newest value per entity with event time in [start, end] online."""
    from plinth.features.online import materialize as service

    return call(s.MATERIALIZE, service, project=project, start=start, end=end, views=views)


def materialize_incremental(
    end: datetime, views: list[str] | None = None, project: str | None = None
) -> s.MaterializeResult:
    """Materialize from where each view's last materialization ended (or ``end - ttl``)."""
    from plinth.features.online import materialize_incremental as service

    return call(s.MATERIALIZE_INCREMENTAL, service, project=project, end=end, views=views)


def get_online_features(
    features: Any = None,
    entity_rows: Any = None,
    feature_service: Any = None,
    full_feature_names: bool = False,
    project: str | None = None,
) -> s.OnlineFeatures:
    """The newest online values for ``entity_rows`` (``[{"driver_id": 1001}, ...]``), with their
    event timestamps; values older than the view's ttl come back null (status ``expired``).

    >>> rows = [{"driver_id": 1001}]
    >>> plinth.features.get_online_features(["driver_stats:conv_rate"], rows).to_dict()  # doctest: +SKIP
    {'driver_id': [1001], 'conv_rate': [0.53]}
    """
    from plinth.features.online import get_online_features as service

    features, feature_service = _target(features, feature_service)
    if entity_rows is None:
        raise InvalidInput("entity_rows are required, e.g. [{'driver_id': 1001}]", field="entity_rows")
    if hasattr(entity_rows, "columns") and hasattr(entity_rows, "to_dict"):
        entity_rows = {str(c): entity_rows[c].tolist() for c in entity_rows.columns}
    backend = current_backend()
    if not backend.remote:  # the lookup needs no metadata transaction: skip opening one
        ctx = _lookup_context(backend.platform, project)  # type: ignore[attr-defined]
        return service(ctx, entity_rows, features, feature_service, full_feature_names)
    return call(  # type: ignore[no-any-return]
        s.ONLINE,
        service,
        project=project,
        entity_rows=entity_rows,
        features=features,
        feature_service=feature_service,
        full_feature_names=full_feature_names,
    )


def _lookup_context(platform: Any, project: str | None) -> Any:
    """The embedded caller's context, without a database session (lookups read a cache)."""
    from plinth.core.context import LOCAL_ADMIN
    from plinth.features.online import lookup_context

    return lookup_context(platform, LOCAL_ADMIN, project or "default")


def push(
    feature_view: str | FeatureView, rows: Any, to: str = "online_and_offline", project: str | None = None
) -> s.PushResult:
    """Append rows to the view's source and write the newest per entity online.

    The rows need the join keys, the source's timestamp column and every feature, in types
    that fit the declared dtypes; otherwise nothing is written anywhere.
    """
    from plinth.features.offline import as_arrow
    from plinth.features.online import push as service

    view = feature_view.name if isinstance(feature_view, FeatureView) else feature_view
    backend = current_backend()
    if not backend.remote:
        return backend.call(s.PUSH, service, project=project, view=view, rows=rows, to=to)  # type: ignore[no-any-return]
    return _upload(s.PUSH, service, as_arrow(rows, "pushed rows"), project, {"view": view, "to": to})  # type: ignore[no-any-return]

"""REST routes of the features area: thin, each one service call. Entity frames and pushed
rows arrive as Arrow IPC streams; historical results leave as one. The feature server's
lookup is ``POST /features/online`` (and ``/api/v1/features/online``)."""

from __future__ import annotations

import io
from typing import Annotated, Any

import pyarrow as pa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool

from plinth.core.errors import InvalidInput
from plinth.features import catalog
from plinth.features import schemas as s
from plinth.features import service as svc
from plinth.server.deps import CallerDep, authenticate_request, get_caller

router = APIRouter(tags=["features"])
ARROW_STREAM = "application/vnd.apache.arrow.stream"
MAX_BODY = 1 << 30


class ApplyBody(BaseModel):
    objects: list[dict[str, Any]]
    prune: bool = False


@router.post(s.PLAN.path)
def plan(body: ApplyBody, caller: CallerDep) -> s.Plan:
    return caller.call(svc.plan, objects=body.objects, prune=body.prune)


@router.post(s.APPLY.path)
def apply(body: ApplyBody, caller: CallerDep) -> s.ApplyResult:
    return caller.call(svc.apply, objects=body.objects, prune=body.prune)


@router.get(s.LIST_DEFINITIONS.path)
def list_definitions(caller: CallerDep, kind: str | None = None) -> list[s.DefinitionInfo]:
    return caller.call(svc.list_definitions, kind=kind)


@router.get(s.LIST_VIEWS.path)
def list_views(caller: CallerDep) -> list[s.DefinitionInfo]:
    return [d for d in caller.call(svc.list_definitions) if d.kind in {"feature_view", "on_demand_feature_view"}]


@router.get(s.GET_VIEW.path)
def get_view(name: str, caller: CallerDep) -> s.FeatureViewDetail:
    return caller.call(catalog.view_detail, name=name)


@router.get(s.LIST_SERVICES.path)
def list_services(caller: CallerDep) -> list[s.DefinitionInfo]:
    return caller.call(svc.list_definitions, kind="feature_service")


@router.get(s.GET_SERVICE.path)
def get_service(name: str, caller: CallerDep) -> s.FeatureServiceDetail:
    return caller.call(catalog.service_detail, name=name)


@router.get(s.GET_ENTITY.path)
def get_entity(name: str, caller: CallerDep) -> s.DefinitionInfo:
    return caller.call(svc.get_definition, kind="entity", name=name)


@router.get(s.LIST_FEATURES.path)
def list_features(caller: CallerDep, query: str | None = None) -> list[s.FeatureInfo]:
    return caller.call(catalog.list_features, query=query)


@router.get(s.GET_FEATURE.path)
def get_feature(ref: str, caller: CallerDep) -> s.FeatureInfo:
    return caller.call(catalog.feature_detail, ref=ref)


@router.get(s.FRESHNESS.path)
def freshness(caller: CallerDep) -> list[s.Freshness]:
    return caller.call(catalog.freshness)


@router.post(s.MATERIALIZE.path)
def materialize(body: s.MaterializeBody, caller: CallerDep) -> s.MaterializeResult:
    from plinth.features.online import materialize as service

    return caller.call(service, start=body.start, end=body.end, views=body.views)


@router.post(s.MATERIALIZE_INCREMENTAL.path)
def materialize_incremental(body: s.MaterializeBody, caller: CallerDep) -> s.MaterializeResult:
    from plinth.features.online import materialize_incremental as service

    return caller.call(service, end=body.end, views=body.views)


async def online_features(
    request: Request,
    body: s.OnlineBody,
    project: Annotated[str, Query(description="the project the call acts in")] = "default",
) -> Response:
    """The feature server's lookup. It runs on the event loop, not in the thread pool: a
    lookup takes well under a millisecond, less than the hops to a worker thread would."""
    from plinth.features.online import get_online_features, lookup_context

    caller = get_caller(request, authenticate_request(request), project)
    ctx = lookup_context(caller.platform, caller.actor, caller.project, caller.request_id)  # no transaction
    result = get_online_features(
        ctx,
        entity_rows=body.entity_rows,
        features=body.features,
        feature_service=body.feature_service,
        full_feature_names=body.full_feature_names,
    )
    return Response(result.model_dump_json(), media_type="application/json")


for _path in (s.ONLINE.path, "/features/online"):
    router.add_api_route(_path, online_features, methods=["POST"], response_model=s.OnlineFeatures)


async def _arrow_body(request: Request, what: str) -> pa.Table:
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_BODY:
            raise InvalidInput(f"{what} is larger than {MAX_BODY >> 20} MiB; send it in parts", field="body")
    try:
        return pa.ipc.open_stream(io.BytesIO(bytes(data))).read_all()
    except (pa.ArrowInvalid, OSError):
        raise InvalidInput(f"{what} must be an Arrow IPC stream ({ARROW_STREAM})", field="body") from None


@router.post(s.HISTORICAL.path)
async def historical(
    request: Request,
    caller: CallerDep,
    features: Annotated[list[str] | None, Query()] = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
) -> StreamingResponse:
    from anyio import to_thread

    from plinth.data.service import ipc_stream
    from plinth.features.retrieval import open_historical

    entities = await _arrow_body(request, "the entity frame")
    info, reader = await to_thread.run_sync(
        lambda: caller.call(
            open_historical,
            entity_df=entities,
            features=features,
            feature_service=feature_service,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
        )
    )
    headers = {"X-Plinth-Feature-Views": ",".join(info["views"])}
    return StreamingResponse(iterate_in_threadpool(ipc_stream(reader)), media_type=ARROW_STREAM, headers=headers)


@router.put(s.TRAINING_SET.path, status_code=201)
async def training_set(
    request: Request,
    caller: CallerDep,
    name: str,
    features: Annotated[list[str] | None, Query()] = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
    run_id: str | None = None,
    description: str | None = None,
    tags: Annotated[list[str] | None, Query()] = None,
) -> s.TrainingSetInfo:
    from anyio import to_thread

    from plinth.features.retrieval import create_training_set

    entities = await _arrow_body(request, "the entity frame")
    return await to_thread.run_sync(
        lambda: caller.call(
            create_training_set,
            name=name,
            entity_df=entities,
            features=features,
            feature_service=feature_service,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            run_id=run_id,
            description=description,
            tags=tags,
        )
    )


@router.put(s.PUSH.path, status_code=201)
async def push(request: Request, caller: CallerDep, view: str, to: str = "online_and_offline") -> s.PushResult:
    from anyio import to_thread

    from plinth.features.online import push as service

    rows = await _arrow_body(request, "the pushed rows")
    return await to_thread.run_sync(lambda: caller.call(service, view=view, rows=rows, to=to))

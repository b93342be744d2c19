"""REST routes of the tracking area: thin, each one service call."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from plinth.artifacts.schemas import ArtifactInfo
from plinth.server.bodies import json_response, openapi_body, read_json_object
from plinth.server.deps import CallerDep
from plinth.server.streaming import with_request_body
from plinth.tracking import schemas as s
from plinth.tracking import service as svc

router = APIRouter(tags=["tracking"])


@router.post(s.CREATE_EXPERIMENT.path, status_code=201)
def create_experiment(body: s.ExperimentCreate, caller: CallerDep) -> s.ExperimentInfo:
    return caller.call(svc.create_experiment, name=body.name, description=body.description)


@router.get(s.LIST_EXPERIMENTS.path)
def list_experiments(caller: CallerDep) -> list[s.ExperimentInfo]:
    return caller.call(svc.list_experiments)


@router.get(s.GET_EXPERIMENT.path)
def get_experiment(name: str, caller: CallerDep) -> s.ExperimentInfo:
    return caller.call(svc.get_experiment, name=name)


@router.put(s.SET_EXPERIMENT.path)
def set_experiment(name: str, caller: CallerDep) -> s.ExperimentInfo:
    """The experiment by that name, created if needed (what ``plinth.set_experiment`` does)."""
    return caller.call(svc.set_experiment, name=name)


@router.post(s.START_RUN.path, status_code=201)
def start_run(body: s.RunStart, caller: CallerDep) -> s.RunInfo:
    return caller.call(
        svc.start_run, experiment=body.experiment, name=body.name, tags=body.tags, parent_id=body.parent_id
    )


@router.post(s.SEARCH_RUNS.path, response_model=s.RunTable)
def search_runs(body: s.SearchRequest, caller: CallerDep) -> Response:
    table = caller.call(
        svc.search_runs,
        experiments=body.experiments,
        filter=body.filter,
        order_by=body.order_by,
        max_results=body.max_results,
        page_token=body.page_token,
        include_deleted=body.include_deleted,
    )
    # Serialised once, by the model itself, without FastAPI validating every value again on the way out.
    return Response(table.model_dump_json(), media_type="application/json")


@router.get(s.COMPARE_RUNS.path)
def compare_runs(caller: CallerDep, run_ids: Annotated[list[str], Query()]) -> s.RunComparison:
    return caller.call(svc.compare_runs, run_ids=run_ids)


@router.get(s.GET_RUN.path)
def get_run(run_id: str, caller: CallerDep) -> s.RunDetail:
    return caller.call(svc.get_run, run_id=run_id)


@router.post(s.END_RUN.path)
def end_run(run_id: str, body: s.RunEnd, caller: CallerDep) -> s.RunInfo:
    return caller.call(svc.end_run, run_id=run_id, status=body.status, error=body.error)


@router.delete(s.DELETE_RUN.path, status_code=204)
def delete_run(run_id: str, caller: CallerDep) -> Response:
    caller.call(svc.delete_run, run_id=run_id)
    return Response(status_code=204)


class LogBatchBody(BaseModel):
    """Metrics as rows or by column, params and tags (any of them may be left out)."""

    # Items are checked by the service, whose errors name the metric key.
    metrics: list[Any] | None = Field(
        None, description='rows [key, value, step, timestamp_ms]; NaN and ±inf as "NaN", "Infinity", "-Infinity"'
    )
    series: dict[str, Any] | None = Field(
        None,
        description="points by key and column: {key: {steps: [...], values: [...], timestamps: [...] or null}} "
        "(null timestamps: now; NaN and Infinity literals allowed)",
    )
    params: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None


_BATCH_FIELDS = {"metrics": list, "series": dict, "params": dict, "tags": dict}


@router.post(
    s.LOG_BATCH.path,
    response_model=s.BatchResult,
    openapi_extra=openapi_body(LogBatchBody, "metric points, params and tags of one run"),
)
async def log_batch(run_id: str, request: Request, caller: CallerDep) -> Response:
    """Metrics as ``[key, value, step, timestamp_ms]`` rows or by column under ``series``, params
    and tags as objects: one transaction, one bulk insert. The body is read by pydantic's JSON
    parser (a batch of 1,000 points by column in about a quarter of the time ``json.loads`` takes
    for the same points as rows)."""
    body = await read_json_object(request, _BATCH_FIELDS)
    result = await run_in_threadpool(
        caller.call,
        svc.log_batch,
        run_id=run_id,
        metrics=body.get("metrics"),
        series=body.get("series"),
        params=body.get("params"),
        tags=body.get("tags"),
    )
    return json_response(result)


@router.get(s.METRIC_HISTORY.path)
def metric_history(
    run_id: str, key: str, caller: CallerDep, max_points: Annotated[int | None, Query(ge=2)] = None
) -> s.MetricHistory:
    return caller.call(svc.metric_history, run_id=run_id, key=key, max_points=max_points)


@router.put(s.PUT_RUN_ARTIFACT.path, status_code=201)
async def put_run_artifact(
    run_id: str, name: str, request: Request, caller: CallerDep, media_type: str | None = None
) -> ArtifactInfo:
    """Stream the body into the artifact store as an artifact of a running run."""
    return await with_request_body(
        request,
        lambda body: caller.call(svc.put_run_artifact, run_id=run_id, name=name, content=body, media_type=media_type),
    )

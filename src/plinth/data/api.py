"""REST routes of the data area: thin, each one service call. Ingest takes the file's
bytes as a streamed request body; reads answer an Arrow IPC stream."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool

from plinth.core.errors import InvalidInput
from plinth.data import schemas as s
from plinth.data import service as svc
from plinth.server.deps import CallerDep
from plinth.server.streaming import with_request_body

router = APIRouter(tags=["data"])
ARROW_STREAM = "application/vnd.apache.arrow.stream"


class ProfileBody(BaseModel):
    ref: str
    refresh: bool = False


@router.get(s.LIST_DATASETS.path)
def list_datasets(caller: CallerDep) -> list[s.DatasetInfo]:
    return caller.call(svc.list_datasets)


@router.get(s.GET_DATASET.path)
def get_dataset(name: str, caller: CallerDep) -> s.DatasetDetail:
    return caller.call(svc.dataset_detail, name=name)


@router.get(s.LIST_VERSIONS.path)
def list_versions(name: str, caller: CallerDep, limit: int = 1000) -> list[s.VersionInfo]:
    return caller.call(svc.list_versions, name=name, limit=limit)


@router.post(s.TAG_VERSION.path, status_code=201)
def tag_version(name: str, body: s.TagBody, caller: CallerDep) -> s.VersionInfo:
    return caller.call(svc.tag_version, name=name, tag=body.tag, version=body.version, force=body.force)


@router.delete(s.DELETE_TAG.path, status_code=204)
def delete_tag(name: str, tag: str, caller: CallerDep) -> Response:
    caller.call(svc.untag, name=name, tag=tag)
    return Response(status_code=204)


@router.get(s.QUALITY_RESULTS.path)
def quality_results(
    name: str, caller: CallerDep, version: int | None = None, limit: int = 100
) -> list[s.ValidationResult]:
    return caller.call(svc.quality_results, name=name, version=version, limit=limit)


@router.get(s.GET_VERSION.path)
def get_version(ref: str, caller: CallerDep, as_of: datetime | None = None) -> s.VersionInfo:
    return caller.call(svc.get_version, ref=ref, as_of=as_of)


@router.post(s.PROFILE.path)
def profile(body: ProfileBody, caller: CallerDep) -> s.Profile:
    return caller.call(svc.profile, ref=body.ref, refresh=body.refresh)


@router.post(s.VALIDATE.path)
def validate(body: s.ValidateBody, caller: CallerDep) -> s.ValidationResult:
    return caller.call(svc.validate, ref=body.ref, suite=body.suite)


@router.get(s.DIFF.path)
def diff(a: str, b: str, caller: CallerDep) -> s.DatasetDiff:
    return caller.call(svc.diff, a=a, b=b)


@router.get(s.LINEAGE.path)
def lineage(ref: str, caller: CallerDep, direction: str = "both", depth: int = 20) -> s.LineageGraph:
    from plinth.data.lineage_graph import lineage as lineage_service

    return caller.call(lineage_service, ref=ref, direction=direction, depth=depth)


@router.post(s.RECORD_LINEAGE.path, status_code=201)
def record_lineage(body: s.LineageBody, caller: CallerDep) -> s.LineageEdgeInfo:
    from plinth.data.lineage_graph import record_lineage as record_service

    return caller.call(record_service, src=body.src, dst=body.dst, kind=body.kind)


def _suite(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput("suite must be a JSON expectation suite", field="suite") from None


@router.put(s.INGEST.path, status_code=201)
async def ingest(
    request: Request,
    caller: CallerDep,
    name: str,
    format: str,  # noqa: A002
    filename: str | None = None,
    mode: str = "append",
    tags: Annotated[list[str] | None, Query()] = None,
    allow_breaking: bool = False,
    on_bad_lines: str = "error",
    on_failure: str = "reject",
    suite: str | None = None,
    description: str | None = None,
    run_id: str | None = None,
    profile: bool = True,
) -> s.IngestResult:
    """Stream the request body (a file's bytes or an Arrow IPC stream) into a new version."""
    from plinth.data.ingestion import ingest_stream

    expectations = _suite(suite)

    return await with_request_body(
        request,
        lambda body: caller.call(
            ingest_stream,
            name=name,
            content=body,
            format=format,
            filename=filename,
            mode=mode,
            tags=tags,
            allow_breaking=allow_breaking,
            on_bad_lines=on_bad_lines,
            expectations=expectations,
            on_failure=on_failure,
            description=description,
            run_id=run_id,
            profile=profile,
        ),
    )


def _filter(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput("filter must be JSON: a list of [column, op, value]", field="filter") from None


def _arrow_response(info: Any, reader: Any, headers: dict[str, str]) -> StreamingResponse:
    return StreamingResponse(iterate_in_threadpool(svc.ipc_stream(reader)), media_type=ARROW_STREAM, headers=headers)


@router.get(s.READ.path)
def read(
    ref: str,
    caller: CallerDep,
    columns: Annotated[list[str] | None, Query()] = None,
    filter: str | None = None,  # noqa: A002
    as_of: datetime | None = None,
    run_id: str | None = None,
    split_key: str | None = None,
    split_from: float = 0.0,
    split_to: float = 1.0,
    split_salt: str = "",
) -> StreamingResponse:
    info, reader = caller.call(
        svc.open_read,
        ref=ref,
        columns=columns,
        filter=_filter(filter),
        as_of=as_of,
        run_id=run_id,
        split_key=split_key,
        split_from=split_from,
        split_to=split_to,
        split_salt=split_salt,
    )
    return _arrow_response(info, reader, {"X-Plinth-Dataset-Version": info.ref})


@router.get(s.QUARANTINE.path)
def quarantine(name: str, caller: CallerDep) -> StreamingResponse:
    info, reader = caller.call(svc.open_quarantine, name=name)
    return _arrow_response(info, reader, {"X-Plinth-Dataset": info.name})

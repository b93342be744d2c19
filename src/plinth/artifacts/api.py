"""REST routes of the artifacts area; content streams in and out without buffering."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from plinth.artifacts import schemas as s
from plinth.artifacts import service as svc
from plinth.server.deps import CallerDep

router = APIRouter(tags=["artifacts"])


@router.get(s.LIST_ARTIFACTS.path)
def list_artifacts(owner: str, caller: CallerDep, prefix: str | None = None) -> list[s.ArtifactInfo]:
    return caller.call(svc.list_artifacts, owner=owner, prefix=prefix)


@router.get(s.GET_ARTIFACT.path)
def get_artifact(owner: str, name: str, caller: CallerDep) -> s.ArtifactInfo:
    return caller.call(svc.get_artifact, owner=owner, name=name)


@router.delete(s.DELETE_ARTIFACT.path, status_code=204)
def delete_artifact(owner: str, name: str, caller: CallerDep) -> Response:
    caller.call(svc.delete_artifact, owner=owner, name=name)
    return Response(status_code=204)


@router.put(s.UPLOAD_ARTIFACT.path, status_code=201)
async def upload_artifact(
    owner: str, name: str, request: Request, caller: CallerDep, media_type: str | None = None
) -> s.ArtifactInfo:
    """Stream the request body into the store; a broken upload leaves no artifact."""
    from anyio import from_thread, to_thread

    def body() -> Iterator[bytes]:
        stream = request.stream().__aiter__()
        while True:
            try:
                yield from_thread.run(stream.__anext__)
            except StopAsyncIteration:
                return

    return await to_thread.run_sync(
        lambda: caller.call(svc.put_artifact, owner=owner, name=name, content=body(), media_type=media_type)
    )


@router.get(s.DOWNLOAD_ARTIFACT.path)
def download_artifact(owner: str, name: str, caller: CallerDep) -> StreamingResponse:
    info, chunks = caller.call(svc.open_artifact, owner=owner, name=name)
    return StreamingResponse(
        iterate_in_threadpool(chunks),
        media_type=info.media_type,
        headers={
            "Content-Length": str(info.size),
            "X-Plinth-SHA256": info.sha256,
            "ETag": f'"{info.sha256}"',
        },
    )

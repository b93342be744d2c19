"""REST routes of the artifacts area; content streams in and out without buffering."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain, islice
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool

from plinth.artifacts import schemas as s
from plinth.artifacts import service as svc
from plinth.server.deps import CallerDep
from plinth.server.streaming import with_request_body

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
    return await with_request_body(
        request, lambda body: caller.call(svc.put_artifact, owner=owner, name=name, content=body, media_type=media_type)
    )


@router.get(s.DOWNLOAD_ARTIFACT.path)
def download_artifact(owner: str, name: str, caller: CallerDep) -> StreamingResponse:
    info, chunks = caller.call(svc.open_artifact, owner=owner, name=name)
    # A blob of one chunk is read and verified before the headers leave, so that its
    # corruption gets a proper error response rather than a cut stream.
    first = list(islice(chunks, 2))
    return StreamingResponse(
        iterate_in_threadpool(_last_chunk_after_verification(chain(first, chunks))),
        media_type=info.media_type,
        headers={
            "Content-Length": str(info.size),
            "X-Plinth-SHA256": info.sha256,
            "ETag": f'"{info.sha256}"',
            # Bytes users uploaded must never run as a page of this origin (stored XSS with
            # the UI's cookie): download them, sniff nothing, and sandbox them if shown.
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(_basename(info.name))}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


def _last_chunk_after_verification(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Send each chunk once the next one is read.

    The blob store checks the sha256 when its stream ends, after the headers are gone. Held
    back, the last chunk never leaves when that check fails: the client gets fewer bytes
    than Content-Length promised and its HTTP library reports a broken download, instead of
    a complete-looking corrupted file.
    """
    held: bytes | None = None
    for chunk in chunks:
        if held is not None:
            yield held
        held = chunk
    if held is not None:
        yield held


def _basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]

"""SDK functions of the artifacts area."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from plinth.artifacts import schemas as s
from plinth.artifacts import service as svc
from plinth.client.backend import current_backend
from plinth.core.errors import InvalidInput
from plinth.core.ops import call


def upload_artifact(
    owner: str,
    name: str,
    source: str | os.PathLike[str] | bytes | IO[bytes] | Iterable[bytes],
    media_type: str | None = None,
    project: str | None = None,
) -> s.ArtifactInfo:
    """Store a file, bytes or a stream as artifact ``name`` of ``owner`` (e.g. ``runs:/<id>``).

    The bytes stream in chunks; nothing is held whole in memory. Local paths must be
    regular files (a symbolic link is refused).
    """
    backend = current_backend()
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_symlink():
            raise InvalidInput(f"{path} is a symbolic link; Plinth stores only regular files", field="source")
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file", field="source")
        with path.open("rb") as fh:
            return backend.upload(  # type: ignore[no-any-return]
                s.UPLOAD_ARTIFACT, svc.put_artifact, project=project, content=_iter_file(fh) if backend.remote else fh,
                owner=owner, name=name, media_type=media_type,
            )
    return backend.upload(  # type: ignore[no-any-return]
        s.UPLOAD_ARTIFACT, svc.put_artifact, project=project, content=source, owner=owner, name=name, media_type=media_type
    )


def _iter_file(fh: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk


def download_artifact(owner: str, name: str, project: str | None = None) -> Iterator[bytes]:
    """Stream an artifact's bytes; the sha256 is verified when the stream ends."""
    return current_backend().download(s.DOWNLOAD_ARTIFACT, svc.open_artifact, project=project, owner=owner, name=name)


def read_artifact(owner: str, name: str, project: str | None = None) -> bytes:
    return b"".join(download_artifact(owner, name, project=project))


def get_artifact(owner: str, name: str, project: str | None = None) -> s.ArtifactInfo:
    return call(s.GET_ARTIFACT, svc.get_artifact, project=project, owner=owner, name=name)


def list_artifacts(owner: str, prefix: str | None = None, project: str | None = None) -> list[s.ArtifactInfo]:
    return call(s.LIST_ARTIFACTS, svc.list_artifacts, project=project, owner=owner, prefix=prefix)


def delete_artifact(owner: str, name: str, project: str | None = None) -> None:
    call(s.DELETE_ARTIFACT, svc.delete_artifact, project=project, owner=owner, name=name)

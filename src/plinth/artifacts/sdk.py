"""SDK functions of the artifacts area."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from plinth.artifacts import schemas as s
from plinth.artifacts import service as svc
from plinth.client.backend import current_backend
from plinth.core.errors import DataCorrupted, InvalidInput
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
        with _open_regular_file(Path(source)) as fh:
            return backend.upload(  # type: ignore[no-any-return]
                s.UPLOAD_ARTIFACT,
                svc.put_artifact,
                project=project,
                content=_iter_file(fh) if backend.remote else fh,
                owner=owner,
                name=name,
                media_type=media_type,
            )
    return backend.upload(  # type: ignore[no-any-return]
        s.UPLOAD_ARTIFACT,
        svc.put_artifact,
        project=project,
        content=source,
        owner=owner,
        name=name,
        media_type=media_type,
    )


def _open_regular_file(path: Path) -> IO[bytes]:
    """Open a regular file for reading, refusing symbolic links even if one is swapped in."""
    if path.is_symlink():
        raise InvalidInput(f"{path} is a symbolic link; Plinth stores only regular files", field="source")
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="source")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:  # ELOOP: it became a link after the check above
        raise InvalidInput(f"{path} cannot be read as a regular file: {exc.strerror}", field="source") from None
    fh = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        fh.close()
        raise InvalidInput(f"{path} is not a file", field="source")
    return fh


def _iter_file(fh: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := fh.read(size):
        yield chunk


def download_artifact(owner: str, name: str, project: str | None = None) -> Iterator[bytes]:
    """Stream an artifact's bytes; the sha256 is verified when the stream ends."""
    backend = current_backend()
    op, fn = s.DOWNLOAD_ARTIFACT, svc.open_artifact
    if not backend.remote:  # the blob store verifies what it reads
        return backend.download(op, fn, project=project, owner=owner, name=name)
    # Remote: verify again here, end to end, against the recorded digest.
    info = get_artifact(owner, name, project=project)
    return _verified(backend.download(op, fn, project=project, owner=owner, name=name), info)


def _verified(chunks: Iterator[bytes], info: s.ArtifactInfo) -> Iterator[bytes]:
    digest, size = hashlib.sha256(), 0
    for chunk in chunks:
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    if (digest.hexdigest(), size) != (info.sha256, info.size):
        raise DataCorrupted(
            f"artifact {info.name!r} of {info.owner} arrived corrupted: expected sha256 "
            f"{info.sha256} ({info.size} bytes), got {digest.hexdigest()} ({size} bytes)",
            sha256=info.sha256,
        )


def read_artifact(owner: str, name: str, project: str | None = None) -> bytes:
    return b"".join(download_artifact(owner, name, project=project))


def get_artifact(owner: str, name: str, project: str | None = None) -> s.ArtifactInfo:
    return call(s.GET_ARTIFACT, svc.get_artifact, project=project, owner=owner, name=name)


def list_artifacts(owner: str, prefix: str | None = None, project: str | None = None) -> list[s.ArtifactInfo]:
    return call(s.LIST_ARTIFACTS, svc.list_artifacts, project=project, owner=owner, prefix=prefix)


def delete_artifact(owner: str, name: str, project: str | None = None) -> None:
    call(s.DELETE_ARTIFACT, svc.delete_artifact, project=project, owner=owner, name=name)

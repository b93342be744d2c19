"""Content-addressed blob store over fsspec: a local folder or an S3 bucket.

Blobs live at ``blobs/sha256/<aa>/<bb>/<sha256>``; nothing else ever chooses a key, so
no user input can name a path. Writes stream through a local spool file while hashing
(bounded memory), then land atomically: ``os.replace`` on a local folder, a single
(multipart) PUT on S3, which makes the object visible only once complete. Reads stream
and verify the hash at the end; identical content is stored once.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from plinth.core.errors import DataCorrupted, InvalidInput, NotFound, Unavailable
from plinth.core.hashing import CHUNK_SIZE, is_sha256

__all__ = ["BlobInfo", "BlobStore"]


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int


def _chunks(source: IO[bytes] | Iterable[bytes] | bytes) -> Iterator[bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(CHUNK_SIZE):
            yield chunk
        return
    for chunk in source:  # type: ignore[union-attr]
        if chunk:
            yield bytes(chunk)


class BlobStore:
    """Building one does no I/O; the filesystem is opened on first use."""

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.storage_options = storage_options or {}
        self._fs: Any = None

    def __repr__(self) -> str:
        return f"BlobStore({self.url!r})"

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def root(self) -> str:
        if self.url.startswith("file://"):
            return self.url[len("file://") :]
        if self.url.startswith(("s3://", "s3a://")):
            return self.url.split("://", 1)[1]
        return self.url

    @property
    def fs(self) -> Any:
        if self._fs is None:
            if self.is_local:
                import fsspec

                self._fs = fsspec.filesystem("file")
            else:
                try:
                    import s3fs
                except ImportError:
                    raise Unavailable(
                        "the S3 artifact store needs s3fs: pip install 'plinth-ml[s3]'"
                    ) from None
                options = dict(self.storage_options)
                endpoint = os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")
                if endpoint and "endpoint_url" not in options:
                    options["endpoint_url"] = endpoint
                self._fs = s3fs.S3FileSystem(**options)
        return self._fs

    def key(self, sha256: str) -> str:
        if not is_sha256(sha256):
            raise InvalidInput(f"{sha256!r} is not a sha256 digest", field="sha256")
        return f"{self.root}/blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    # --- write -----------------------------------------------------------------------
    def put(self, source: IO[bytes] | Iterable[bytes] | bytes) -> BlobInfo:
        """Store a stream; returns its digest. An error mid-stream leaves nothing behind."""
        spool_dir = Path(self.root) / "tmp" if self.is_local else None
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="upload-", dir=spool_dir)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in _chunks(source):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            info = BlobInfo(digest.hexdigest(), size)
            self._land(tmp, info)
            return info
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_file(self, path: str | os.PathLike[str]) -> BlobInfo:
        p = Path(path)
        if p.is_symlink():
            raise InvalidInput(f"{p} is a symbolic link; Plinth stores only regular files", field="path")
        with p.open("rb") as fh:
            return self.put(fh)

    def _land(self, tmp: str, info: BlobInfo) -> None:
        key = self.key(info.sha256)
        try:
            if self.fs.exists(key):
                return  # identical content is stored once
            if self.is_local:
                Path(key).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, key)
            else:
                self.fs.put_file(tmp, key)
        except OSError as exc:
            raise Unavailable(f"cannot write to the artifact store {self.url}: {exc}") from None

    # --- read ------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self.key(sha256)))

    def open(self, sha256: str, size: int | None = None) -> Iterator[bytes]:
        """Stream a blob in chunks; raises DataCorrupted at the end if the bytes changed."""
        key = self.key(sha256)
        try:
            fh = self.fs.open(key, "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {sha256} is missing from the artifact store {self.url}") from None
        return self._verified(fh, sha256, size)

    def _verified(self, fh: Any, sha256: str, size: int | None) -> Iterator[bytes]:
        digest, seen = hashlib.sha256(), 0
        with fh:
            while chunk := fh.read(CHUNK_SIZE):
                digest.update(chunk)
                seen += len(chunk)
                yield chunk
        if digest.hexdigest() != sha256 or (size is not None and seen != size):
            raise DataCorrupted(
                f"blob {sha256} is corrupted: its content hashes to {digest.hexdigest()}",
                sha256=sha256,
            )

    def read_bytes(self, sha256: str) -> bytes:
        return b"".join(self.open(sha256))

    def delete(self, sha256: str) -> None:
        key = self.key(sha256)
        if self.fs.exists(key):
            self.fs.rm(key)

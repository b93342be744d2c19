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


_CONTENT = "content must be bytes, a binary file or an iterable of bytes"


def _chunks(source: IO[bytes] | Iterable[bytes] | bytes) -> Iterator[bytes]:
    if isinstance(source, str):
        raise InvalidInput(f"{_CONTENT}, not str", field="content")
    if isinstance(source, bytes | bytearray | memoryview):
        yield bytes(source)
        return
    read = getattr(source, "read", None)
    if read is not None:
        while chunk := read(CHUNK_SIZE):
            yield _as_bytes(chunk)
        return
    try:
        chunks = iter(source)  # type: ignore[call-overload]
    except TypeError:
        raise InvalidInput(f"{_CONTENT}, not {type(source).__name__}", field="content") from None
    for chunk in chunks:
        if chunk:
            yield _as_bytes(chunk)


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    # A text-mode file or an iterable of str would otherwise fail deep inside hashlib.
    raise InvalidInput(f"{_CONTENT}; got a chunk of {type(chunk).__name__}", field="content")


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
                # Blobs are immutable and never listed: cached listings (shared by every
                # s3fs instance with the same arguments) would only hide changes made by
                # others, such as a deleted or overwritten object.
                options.setdefault("use_listings_cache", False)
                options.setdefault("skip_instance_cache", True)
                endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
                    "AWS_ENDPOINT_URL"
                )
                if endpoint and "endpoint_url" not in options:
                    options["endpoint_url"] = endpoint
                self._fs = s3fs.S3FileSystem(**options)
        return self._fs

    def key(self, sha256: str) -> str:
        if not isinstance(sha256, str) or not is_sha256(sha256):
            raise InvalidInput(f"{sha256!r} is not a sha256 digest", field="sha256")
        return f"{self.root}/blobs/sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"

    # --- write -----------------------------------------------------------------------
    def put(self, source: IO[bytes] | Iterable[bytes] | bytes) -> BlobInfo:
        """Store a stream; returns its digest. An error mid-stream leaves nothing behind."""
        spool_dir = Path(self.root) / "tmp" if self.is_local else None
        try:
            if spool_dir is not None:
                spool_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="upload-", dir=spool_dir)
        except OSError as exc:
            raise Unavailable(f"cannot write to the artifact store {self.url}: {exc}") from None
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
        link = f"{p} is a symbolic link; Plinth stores only regular files"
        if p.is_symlink():
            raise InvalidInput(link, field="path")
        try:  # O_NOFOLLOW: a link swapped in after the check is refused too
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise InvalidInput(f"{p} cannot be read: {exc.strerror}", field="path") from None
        with os.fdopen(fd, "rb") as fh:
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
        except OSError as exc:
            raise Unavailable(f"cannot read from the artifact store {self.url}: {exc}") from None
        return self._verified(fh, sha256, size)

    def _verified(self, fh: Any, sha256: str, size: int | None) -> Iterator[bytes]:
        digest, seen = hashlib.sha256(), 0
        with fh:
            while True:
                try:
                    chunk = fh.read(CHUNK_SIZE)
                except FileNotFoundError:
                    raise NotFound(f"blob {sha256} vanished from {self.url}") from None
                except OSError as exc:
                    if type(exc).__name__ == "FileExpired":  # s3fs: the object changed under us
                        raise DataCorrupted(
                            f"blob {sha256} is corrupted: it was overwritten while being read",
                            sha256=sha256,
                        ) from None
                    raise Unavailable(f"cannot read from {self.url}: {exc}") from None
                if not chunk:
                    break
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

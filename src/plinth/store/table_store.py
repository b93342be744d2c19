"""The table store: where Delta Lake tables live, a local folder or an S3 prefix.

Tables are addressed by the ids of their project and resource (never by a user-supplied
name or path): ``<root>/<project_id>/<kind>/<resource_id>``. Building a store does no
I/O; deltalake opens the location when a table is read or written.

For S3 the location is ``s3://bucket/prefix/...`` and deltalake's storage options come
from the usual ``AWS_*`` variables (``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``,
``AWS_REGION``, keys); a local store needs none.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["TableStore"]

_ID = re.compile(r"^[0-9a-z]{26}$")
_KIND = re.compile(r"^[a-z][a-z_]{0,30}$")
_AWS_OPTIONS = {
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3": "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP": "AWS_ALLOW_HTTP",
    "AWS_REGION": "AWS_REGION",
    "AWS_DEFAULT_REGION": "AWS_REGION",
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN": "AWS_SESSION_TOKEN",
}


class TableStore:
    def __init__(self, url: str, storage_options: dict[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self._storage_options = storage_options

    def __repr__(self) -> str:
        return f"TableStore({self.url!r})"

    @property
    def is_local(self) -> bool:
        return "://" not in self.url or self.url.startswith("file://")

    @property
    def root(self) -> str:
        return self.url[len("file://") :] if self.url.startswith("file://") else self.url

    @property
    def storage_options(self) -> dict[str, str] | None:
        """Options handed to deltalake: given ones, else read from ``AWS_*`` for S3."""
        if self._storage_options is not None:
            return dict(self._storage_options)
        if self.is_local:
            return None
        options: dict[str, str] = {}
        for env, key in _AWS_OPTIONS.items():
            value = os.environ.get(env)
            if value and key not in options:
                options[key] = value
        if options.get("AWS_ENDPOINT_URL", "").startswith("http://"):
            options.setdefault("AWS_ALLOW_HTTP", "true")
        return options

    def location(self, project_id: str, kind: str, resource_id: str, suffix: str = "") -> str:
        """The URI of one table; every part is an id the platform made, checked here."""
        if not _ID.match(project_id) or not _ID.match(resource_id):
            raise ValueError(f"table ids must be platform ids, got {project_id!r}/{resource_id!r}")
        if not _KIND.match(kind) or (suffix and not _KIND.match(suffix)):
            raise ValueError(f"bad table kind or suffix {kind!r}/{suffix!r}")
        name = f"{resource_id}.{suffix}" if suffix else resource_id
        if self.is_local:
            return str(Path(self.root) / project_id / kind / name)
        return f"{self.root}/{project_id}/{kind}/{name}"

    def prepare(self, location: str) -> None:
        """Make a local table's parent folder (S3 needs nothing)."""
        if self.is_local:
            Path(location).parent.mkdir(parents=True, exist_ok=True)

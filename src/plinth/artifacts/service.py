"""Artifacts: named files owned by a resource (a run, a model version…), stored by content.

The name is metadata checked by :func:`validate_artifact_name`; the bytes go to the
blob store under their sha256. Writing the same name twice is a conflict unless the
content is identical (then it is a no-op).
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable, Iterator
from typing import IO

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from plinth.artifacts.schemas import ArtifactInfo
from plinth.artifacts.tables import Artifact
from plinth.core.context import Context
from plinth.core.errors import Conflict, InvalidInput, NotFound
from plinth.core.ids import new_id
from plinth.core.names import validate_artifact_name
from plinth.core.uris import parse_reference

MAX_OWNER = 500  # the owner column's width
MAX_MEDIA_TYPE = 200  # the media_type column's width
_TOKEN = r"[A-Za-z0-9!#$&^_.+-]+"
_MEDIA_TYPE = re.compile(rf'{_TOKEN}/{_TOKEN}( ?; ?{_TOKEN}=({_TOKEN}|"[^"\\\r\n]*"))*')


def _owner(owner: str) -> str:
    ref = parse_reference(owner)
    if ref.version is not None and ref.kind == "runs":
        raise InvalidInput(f"owner {owner!r} must name the resource only, not a path in it", field="owner")
    if len(str(ref)) > MAX_OWNER:
        raise InvalidInput(f"owner is longer than {MAX_OWNER} characters", field="owner")
    return str(ref)


def _media_type(media_type: str | None, name: str) -> str:
    if media_type is None:
        return mimetypes.guess_type(name)[0] or "application/octet-stream"
    if len(media_type) > MAX_MEDIA_TYPE or not _MEDIA_TYPE.fullmatch(media_type):
        raise InvalidInput(
            f"media_type {media_type[:100]!r} is not a media type such as 'application/json'",
            field="media_type",
        )
    return media_type


def put_artifact(
    ctx: Context,
    owner: str,
    name: str,
    content: IO[bytes] | Iterable[bytes] | bytes,
    media_type: str | None = None,
) -> ArtifactInfo:
    """Store ``content`` as artifact ``name`` of ``owner`` (e.g. ``runs:/<id>``)."""
    ctx.require("write")
    owner = _owner(owner)
    name = validate_artifact_name(name)
    media_type = _media_type(media_type, name)
    project_id = ctx.project_id()
    # Bytes land first (content-addressed, so a failed transaction leaves only an
    # unreferenced blob, never a name pointing at missing or partial bytes).
    blob = ctx.stores.blobs.put(content)
    existing = _find(ctx, project_id, owner, name)
    if existing is not None:
        return _same_content(existing, blob.sha256)
    row = Artifact(
        id=new_id(),
        project_id=project_id,
        owner=owner,
        name=name,
        sha256=blob.sha256,
        size=blob.size,
        media_type=media_type,
        created_at=ctx.now(),
        created_by=ctx.actor.name,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(row)
    except IntegrityError:
        # The same name was stored by another upload between our look-up and our insert.
        existing = _find(ctx, project_id, owner, name)
        if existing is None:
            raise
        return _same_content(existing, blob.sha256)
    ctx.emit("artifact.put", owner, {"name": name, "sha256": blob.sha256, "size": blob.size})
    return ArtifactInfo.model_validate(row)


def _find(ctx: Context, project_id: str, owner: str, name: str) -> Artifact | None:
    return ctx.session.execute(
        select(Artifact).where(Artifact.project_id == project_id, Artifact.owner == owner, Artifact.name == name)
    ).scalar()


def _same_content(existing: Artifact, sha256: str) -> ArtifactInfo:
    """Writing a name again is a no-op with the same bytes and a conflict with others."""
    if existing.sha256 != sha256:
        raise Conflict(
            f"artifact {existing.name!r} of {existing.owner} exists with other content",
            owner=existing.owner,
            name=existing.name,
        )
    return ArtifactInfo.model_validate(existing)


def _row(ctx: Context, owner: str, name: str) -> Artifact:
    ctx.require("read")
    owner = _owner(owner)
    name = validate_artifact_name(name)
    row = ctx.session.execute(
        select(Artifact).where(Artifact.project_id == ctx.project_id(), Artifact.owner == owner, Artifact.name == name)
    ).scalar()
    if row is None:
        raise NotFound(f"artifact {name!r} of {owner} does not exist", owner=owner, name=name)
    return row


def get_artifact(ctx: Context, owner: str, name: str) -> ArtifactInfo:
    return ArtifactInfo.model_validate(_row(ctx, owner, name))


def list_artifacts(ctx: Context, owner: str, prefix: str | None = None) -> list[ArtifactInfo]:
    ctx.require("read")
    owner = _owner(owner)
    q = select(Artifact).where(Artifact.project_id == ctx.project_id(), Artifact.owner == owner)
    if prefix:
        q = q.where(Artifact.name.startswith(validate_artifact_name(prefix.rstrip("/")), autoescape=True))
    return [ArtifactInfo.model_validate(a) for a in ctx.session.execute(q.order_by(Artifact.name)).scalars()]


def open_artifact(ctx: Context, owner: str, name: str) -> tuple[ArtifactInfo, Iterator[bytes]]:
    """The artifact's metadata and a verified stream of its bytes."""
    row = _row(ctx, owner, name)
    return ArtifactInfo.model_validate(row), ctx.stores.blobs.open(row.sha256, row.size)


def delete_artifact(ctx: Context, owner: str, name: str) -> None:
    """Forget the name. The blob stays (other names may share it) until a garbage collection."""
    ctx.require("write")
    row = _row(ctx, owner, name)
    ctx.session.delete(row)
    ctx.emit("artifact.delete", row.owner, {"name": row.name, "sha256": row.sha256})

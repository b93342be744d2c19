"""Artifacts: named files owned by a resource (a run, a model version…), stored by content.

The name is metadata checked by :func:`validate_artifact_name`; the bytes go to the
blob store under their sha256. Writing the same name twice is a conflict unless the
content is identical (then it is a no-op).
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable, Iterator
from typing import IO

from sqlalchemy import select

from plinth.artifacts.schemas import ArtifactInfo
from plinth.artifacts.tables import Artifact
from plinth.core.context import Context
from plinth.core.errors import Conflict, InvalidInput, NotFound
from plinth.core.ids import new_id
from plinth.core.names import validate_artifact_name
from plinth.core.uris import parse_reference


def _owner(owner: str) -> str:
    ref = parse_reference(owner)
    if ref.version is not None and ref.kind == "runs":
        raise InvalidInput(f"owner {owner!r} must name the resource only, not a path in it", field="owner")
    return str(ref)


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
    project_id = ctx.project_id()
    # Bytes land first (content-addressed, so a failed transaction leaves only an
    # unreferenced blob, never a name pointing at missing or partial bytes).
    blob = ctx.stores.blobs.put(content)
    existing = ctx.session.execute(
        select(Artifact).where(Artifact.project_id == project_id, Artifact.owner == owner, Artifact.name == name)
    ).scalar()
    if existing is not None:
        if existing.sha256 == blob.sha256:
            return ArtifactInfo.model_validate(existing)
        raise Conflict(f"artifact {name!r} of {owner} exists with other content", owner=owner, name=name)
    row = Artifact(
        id=new_id(),
        project_id=project_id,
        owner=owner,
        name=name,
        sha256=blob.sha256,
        size=blob.size,
        media_type=media_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
        created_at=ctx.now(),
        created_by=ctx.actor.name,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.emit("artifact.put", owner, {"name": name, "sha256": blob.sha256, "size": blob.size})
    return ArtifactInfo.model_validate(row)


def _row(ctx: Context, owner: str, name: str) -> Artifact:
    ctx.require("read")
    owner = _owner(owner)
    name = validate_artifact_name(name)
    row = ctx.session.execute(
        select(Artifact).where(
            Artifact.project_id == ctx.project_id(), Artifact.owner == owner, Artifact.name == name
        )
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

"""The model registry's rules: registered models, versions, aliases, stages and approvals.

Every change checks permission with ``ctx.require`` and appends its event with
``ctx.emit`` in the same transaction; every event of a model has the resource
``models:/<name>`` and says which version it touched, so that the event log alone answers
"which version was @champion, or in production, at time T" (:mod:`plinth.registry.insights`).

* Versions are numbered by bumping the model's ``last_version`` in an ``UPDATE ...
  RETURNING``: the row lock (PostgreSQL) or the write transaction (SQLite) serialises
  concurrent registrations, and a unique constraint backs it up.
* Registering records lineage automatically: the source run, its params and metrics, the
  datasets and feature services it read (lineage edges and ``datasets:/`` / ``features:/``
  references in its tags), and its code version (git commit, branch, dirtiness).
* Production is reached only through an approval request with a reason, approved by a
  user with the approver capability who did not request it; promoting archives the
  version that was in production before.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from plinth.artifacts.tables import Artifact
from plinth.core.context import Context
from plinth.core.errors import Conflict, DataCorrupted, InvalidInput, NotFound
from plinth.core.ids import new_id
from plinth.core.names import validate_name
from plinth.core.uris import parse_reference
from plinth.registry import schemas as s
from plinth.registry.tables import ApprovalRequest, ModelAlias, ModelVersion, RegisteredModel

MAX_TAGS = 100
MAX_TAG_VALUE = 5000
MAX_TEXT = 20_000
MAX_REASON = 5000
MANIFEST_NAME = "plinth-model.yaml"
RESERVED_ALIASES = frozenset({"latest"})


# --- validation -------------------------------------------------------------------------------
def _text(value: object, what: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text", field=what)
    if len(value) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters", field=what)
    return value


def _tags(tags: object) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidInput("tags must be a mapping of name to text", field="tags")
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", field="tags")
    out = {}
    for key, value in tags.items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise InvalidInput(f"tag name {key!r} must be 1-250 characters", field="tags")
        out[key] = _text(value if isinstance(value, str) else str(value), f"tag {key}", MAX_TAG_VALUE)
    return out


def version_number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"version {value!r} must be a positive number", field="version")
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"version {value!r} must be a positive number", field="version") from None
    if number < 1:
        raise InvalidInput(f"version {value!r} must be a positive number", field="version")
    return number


def _stage(value: object) -> str:
    if value not in s.STAGES:
        raise InvalidInput(f"stage {value!r} is not one of {', '.join(s.STAGES)}", field="stage")
    return str(value)


def _alias(value: object) -> str:
    alias = validate_name(value, "alias")
    if alias.isdigit():
        raise InvalidInput(f"alias {alias!r} is a number, which reads as a version; use a word", field="alias")
    if alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"alias {alias!r} is reserved: models:/<name>@latest is always the newest version", field="alias"
        )
    return alias


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# --- lookups ----------------------------------------------------------------------------------
def _model(ctx: Context, name: object) -> RegisteredModel:
    if not isinstance(name, str):
        raise InvalidInput(f"model name {name!r} is not valid", field="name")
    row = ctx.session.execute(
        select(RegisteredModel).where(RegisteredModel.project_id == ctx.project_id(), RegisteredModel.name == name)
    ).scalar()
    if row is None:
        raise NotFound(f"registered model {name!r} does not exist in project {ctx.project!r}", model=name)
    return row


def _version(ctx: Context, model: RegisteredModel, version: object) -> ModelVersion:
    number = version_number(version)
    row = ctx.session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == number)
    ).scalar()
    if row is None:
        latest = f"the latest is {model.last_version}" if model.last_version else "it has none yet"
        raise NotFound(f"model {model.name!r} has no version {number} ({latest})", model=model.name, version=number)
    return row


def _aliases_of(ctx: Context, model_id: str) -> dict[str, ModelVersion]:
    rows = ctx.session.execute(
        select(ModelAlias.alias, ModelVersion)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    ).all()
    return {alias: version for alias, version in rows}


def version_info(model: RegisteredModel, row: ModelVersion, aliases: list[str] | None = None) -> s.VersionInfo:
    return s.VersionInfo(
        id=row.id,
        name=model.name,
        version=row.version,
        stage=row.stage,  # type: ignore[arg-type]
        source=row.source,
        run_id=row.run_id,
        flavor=row.flavor,
        manifest_sha256=row.manifest_sha256,
        files=row.files,
        signature=row.signature,
        lineage=row.lineage or {},
        description=row.description,
        tags=row.tags or {},
        aliases=aliases or [],
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


def _version_info(ctx: Context, model: RegisteredModel, row: ModelVersion) -> s.VersionInfo:
    aliases = [a for a, v in _aliases_of(ctx, model.id).items() if v.id == row.id]
    return version_info(model, row, aliases)


def _model_infos(ctx: Context, models: list[RegisteredModel]) -> list[s.ModelInfo]:
    if not models:
        return []
    ids = [m.id for m in models]
    stages: dict[str, dict[str, int]] = {i: {} for i in ids}
    latest: dict[str, int] = {}
    production: dict[str, int] = {}
    for model_id, stage, count, top in ctx.session.execute(
        select(ModelVersion.model_id, ModelVersion.stage, func.count(), func.max(ModelVersion.version))
        .where(ModelVersion.model_id.in_(ids))
        .group_by(ModelVersion.model_id, ModelVersion.stage)
    ).all():
        stages[model_id][stage] = count
        latest[model_id] = max(latest.get(model_id, 0), top)
        if stage == "production":
            production[model_id] = top
    aliases: dict[str, dict[str, int]] = {i: {} for i in ids}
    for model_id, alias, number in ctx.session.execute(
        select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id.in_(ids))
        .order_by(ModelAlias.alias)
    ).all():
        aliases[model_id][alias] = number
    pending = dict(
        ctx.session.execute(
            select(ApprovalRequest.model_id, func.count())
            .where(ApprovalRequest.model_id.in_(ids), ApprovalRequest.status == "pending")
            .group_by(ApprovalRequest.model_id)
        ).all()
    )
    return [
        s.ModelInfo(
            id=m.id,
            project=ctx.project,
            name=m.name,
            description=m.description,
            owner=m.owner,
            tags=m.tags or {},
            created_at=m.created_at,
            created_by=m.created_by,
            updated_at=m.updated_at,
            latest_version=latest.get(m.id),
            production_version=production.get(m.id),
            aliases=aliases[m.id],
            stages=stages[m.id],
            pending_approvals=pending.get(m.id, 0),
        )
        for m in models
    ]


# --- registered models ------------------------------------------------------------------------
def _create_model(
    ctx: Context, name: str, description: str, owner: str | None, tags: dict[str, str]
) -> RegisteredModel:
    now = ctx.now()
    row = RegisteredModel(
        id=new_id(),
        project_id=ctx.project_id(),
        name=name,
        description=description,
        owner=owner or ctx.actor.name,
        tags=tags,
        card={},
        last_version=0,
        created_at=now,
        created_by=ctx.actor.name,
        updated_at=now,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.emit("model.create", f"models:/{name}", {"description": description[:500], "owner": row.owner})
    return row


def create_model(
    ctx: Context, name: str, description: str = "", owner: str | None = None, tags: dict[str, str] | None = None
) -> s.ModelInfo:
    """Create a registered model (a name that versions are registered under)."""
    ctx.require("write")
    validate_name(name, "model name")
    description = _text(description, "description")
    if owner is not None:
        validate_name(owner, "owner")
    clean_tags = _tags(tags)
    exists = ctx.session.execute(
        select(RegisteredModel.id).where(RegisteredModel.project_id == ctx.project_id(), RegisteredModel.name == name)
    ).scalar()
    if exists:
        raise Conflict(f"registered model {name!r} already exists in project {ctx.project!r}", model=name)
    try:
        with ctx.session.begin_nested():
            row = _create_model(ctx, name, description, owner, clean_tags)
    except IntegrityError:
        raise Conflict(f"registered model {name!r} already exists in project {ctx.project!r}", model=name) from None
    return _model_infos(ctx, [row])[0]


def list_models(ctx: Context) -> list[s.ModelInfo]:
    ctx.require("read")
    rows = list(
        ctx.session.execute(
            select(RegisteredModel).where(RegisteredModel.project_id == ctx.project_id()).order_by(RegisteredModel.name)
        ).scalars()
    )
    return _model_infos(ctx, rows)


def get_model(ctx: Context, name: str) -> s.ModelDetail:
    """A registered model with all its versions (newest first) and its card's fields."""
    ctx.require("read")
    model = _model(ctx, name)
    info = _model_infos(ctx, [model])[0]
    by_version: dict[str, list[str]] = {}
    for alias, row in _aliases_of(ctx, model.id).items():
        by_version.setdefault(row.id, []).append(alias)
    versions = ctx.session.execute(
        select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version.desc())
    ).scalars()
    return s.ModelDetail(
        **info.model_dump(),
        versions=[version_info(model, v, by_version.get(v.id)) for v in versions],
        card=model.card or {},
    )


def update_model(
    ctx: Context,
    name: str,
    description: str | None = None,
    owner: str | None = None,
    tags: dict[str, str] | None = None,
) -> s.ModelInfo:
    ctx.require("write")
    model = _model(ctx, name)
    changes: dict[str, Any] = {}
    if description is not None:
        model.description = _text(description, "description")
        changes["description"] = description[:500]
    if owner is not None:
        model.owner = validate_name(owner, "owner")
        changes["owner"] = owner
    if tags is not None:
        model.tags = _tags(tags)
        changes["tags"] = sorted(model.tags)
    if changes:
        model.updated_at = ctx.now()
        ctx.emit("model.update", f"models:/{name}", changes)
    return _model_infos(ctx, [model])[0]


# --- versions ---------------------------------------------------------------------------------
def _source_files(ctx: Context, source: str) -> tuple[str, str, str | None, dict[str, Artifact]]:
    """(normalised source, artifact owner, run id, {relative name: artifact}) of a model source."""
    ref = parse_reference(source, {"runs", "models"})
    project_id = ctx.project_id()
    run_id: str | None
    if ref.kind == "runs":
        if ref.version is None:
            raise InvalidInput(
                f"source {source!r} names a run, not a model in it: use runs:/<run_id>/<model path>", field="source"
            )
        from plinth.tracking import service as tracking

        run = tracking.get_run(ctx, ref.name)
        if run.project != ctx.project:
            raise InvalidInput(
                f"run {ref.name!r} is in project {run.project!r}; register its model in that project",
                field="source",
            )
        owner, prefix, run_id = f"runs:/{ref.name}", ref.version.rstrip("/") + "/", ref.name
        normalised = f"{owner}/{ref.version.rstrip('/')}"
    else:
        model = _model(ctx, ref.name)
        row = _version_by_ref(ctx, model, source)
        owner, prefix, run_id = f"models:/{model.name}/{row.version}", "", row.run_id
        normalised = owner
    query = select(Artifact).where(Artifact.project_id == project_id, Artifact.owner == owner)
    if prefix:
        query = query.where(Artifact.name.startswith(prefix, autoescape=True))
    files = {a.name[len(prefix) :]: a for a in ctx.session.execute(query).scalars()}
    if MANIFEST_NAME not in files:
        raise NotFound(
            f"{source} holds no model: {MANIFEST_NAME} is missing; log one with plinth.models.log_model",
            source=source,
        )
    return normalised, owner, run_id, files


def _read_manifest(ctx: Context, artifact: Artifact, source: str) -> Any:
    from plinth.models.manifest import Manifest

    data = b"".join(ctx.stores.blobs.open(artifact.sha256, artifact.size))
    return Manifest.loads(data, source)


def _lineage(ctx: Context, run_id: str | None, source: str) -> dict[str, Any]:
    """What the version was made from: the run, its params and metrics, its data and code."""
    if run_id is None:
        return {"source": source}
    from plinth.tracking import service as tracking

    run = tracking.get_run(ctx, run_id)
    inputs: set[str] = set()
    try:
        from plinth.data.lineage_graph import edges_of

        inputs.update(e.src for e in edges_of(ctx, f"runs:/{run_id}") if e.dst == f"runs:/{run_id}")
    except ImportError:  # the data area is optional
        pass
    for value in run.tags.values():
        if value.startswith(("datasets:/", "features:/")):
            try:
                inputs.add(_pinned(ctx, value.strip()))
            except InvalidInput:
                continue
    code = {
        key.removeprefix("plinth.git.").removeprefix("plinth.source."): value
        for key, value in run.tags.items()
        if key in {"plinth.git.commit", "plinth.git.branch", "plinth.git.dirty", "plinth.source.entry_point"}
    }
    return {
        "source": source,
        "run": {
            "id": run.id,
            "name": run.name,
            "experiment": run.experiment,
            "status": run.status,
            "start_time": run.start_time.isoformat(),
            "created_by": run.created_by,
        },
        "params": dict(run.params),
        "metrics": {k: _finite(m.value) for k, m in run.metrics.items()},
        "datasets": sorted(i for i in inputs if i.startswith("datasets:/")),
        "features": sorted(i for i in inputs if i.startswith("features:/")),
        "inputs": sorted(i for i in inputs if not i.startswith(("datasets:/", "features:/"))),
        "code": code,
    }


def _pinned(ctx: Context, ref: str) -> str:
    """A dataset reference by tag or alias as the version it names now (``datasets:/wine/3``)."""
    parsed = parse_reference(ref)
    if parsed.kind == "datasets" and parsed.alias is not None:
        try:
            from plinth.data.service import resolve as resolve_dataset

            dataset, version = resolve_dataset(ctx, str(parsed))
            return f"datasets:/{dataset.name}/{version.version}"
        except (ImportError, NotFound, InvalidInput):
            pass
    return str(parsed)


def _next_version(ctx: Context, model: RegisteredModel) -> int:
    number = ctx.session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.id == model.id)
        .values(last_version=RegisteredModel.last_version + 1)
        .returning(RegisteredModel.last_version)
    ).scalar_one()
    model.last_version = number  # keep the loaded row in step with the database
    return int(number)


def register_version(
    ctx: Context, name: str, source: str, description: str = "", tags: dict[str, str] | None = None
) -> s.VersionInfo:
    """Register the model at ``source`` as the next version of ``name`` (created if new).

    The model's files become artifacts of ``models:/<name>/<version>`` (the same blobs; no
    bytes are copied) after each is checked against the manifest's sha256.
    """
    ctx.require("write")
    validate_name(name, "model name")
    description = _text(description, "description")
    clean_tags = _tags(tags)
    source, _owner, run_id, files = _source_files(ctx, source)
    manifest_artifact = files[MANIFEST_NAME]
    manifest = _read_manifest(ctx, manifest_artifact, source)
    for file, entry in manifest.files.items():
        artifact = files.get(file)
        if artifact is None or artifact.sha256 != entry.sha256:
            found = "missing" if artifact is None else f"sha256 {artifact.sha256[:16]}…"
            raise DataCorrupted(
                f"{source} is refused: {file} does not match {MANIFEST_NAME} "
                f"(expected sha256 {entry.sha256[:16]}…, found {found}); it was tampered with",
                file=file,
            )
    lineage = _lineage(ctx, run_id, source)
    model = ctx.session.execute(
        select(RegisteredModel).where(RegisteredModel.project_id == ctx.project_id(), RegisteredModel.name == name)
    ).scalar()
    if model is None:
        try:
            with ctx.session.begin_nested():
                model = _create_model(ctx, name, "", None, {})
        except IntegrityError:  # created by a concurrent registration meanwhile
            model = _model(ctx, name)
    number = _next_version(ctx, model)
    now = ctx.now()
    row = ModelVersion(
        id=new_id(),
        model_id=model.id,
        version=number,
        stage="development",
        source=source,
        run_id=run_id,
        flavor=manifest.flavor,
        manifest_sha256=manifest_artifact.sha256,
        files={f: {"sha256": e.sha256, "size": e.size} for f, e in manifest.files.items()},
        signature=manifest.signature,
        lineage=lineage,
        description=description,
        tags=clean_tags,
        created_at=now,
        created_by=ctx.actor.name,
        updated_at=now,
    )
    ctx.session.add(row)
    owner = f"models:/{name}/{number}"
    for file in (MANIFEST_NAME, *manifest.files):
        a = files[file]
        ctx.session.add(
            Artifact(
                id=new_id(),
                project_id=a.project_id,
                owner=owner,
                name=file,
                sha256=a.sha256,
                size=a.size,
                media_type=a.media_type,
                created_at=now,
                created_by=ctx.actor.name,
            )
        )
    model.updated_at = now
    ctx.session.flush()
    if run_id is not None:
        try:
            from plinth.data.lineage_graph import add_edge

            add_edge(ctx, f"runs:/{run_id}", f"models:/{name}/{number}", "produced")
        except ImportError:
            pass
    ctx.emit(
        "model_version.create",
        f"models:/{name}",
        {
            "version": number,
            "source": source,
            "run_id": run_id,
            "flavor": manifest.flavor,
            "manifest_sha256": manifest_artifact.sha256,
        },
    )
    return version_info(model, row)


def list_versions(ctx: Context, name: str, stage: str | None = None) -> list[s.VersionInfo]:
    ctx.require("read")
    model = _model(ctx, name)
    query = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if stage is not None:
        query = query.where(ModelVersion.stage == _stage(stage))
    by_version: dict[str, list[str]] = {}
    for alias, row in _aliases_of(ctx, model.id).items():
        by_version.setdefault(row.id, []).append(alias)
    rows = ctx.session.execute(query.order_by(ModelVersion.version.desc())).scalars()
    return [version_info(model, v, by_version.get(v.id)) for v in rows]


def get_version(ctx: Context, name: str, version: int) -> s.VersionInfo:
    ctx.require("read")
    model = _model(ctx, name)
    return _version_info(ctx, model, _version(ctx, model, version))


def update_version(
    ctx: Context, name: str, version: int, description: str | None = None, tags: dict[str, str] | None = None
) -> s.VersionInfo:
    ctx.require("write")
    model = _model(ctx, name)
    row = _version(ctx, model, version)
    changes: dict[str, Any] = {}
    if description is not None:
        row.description = _text(description, "description")
        changes["description"] = description[:500]
    if tags is not None:
        row.tags = _tags(tags)
        changes["tags"] = sorted(row.tags)
    if changes:
        row.updated_at = ctx.now()
        ctx.emit("model_version.update", f"models:/{name}", {"version": row.version, **changes})
    return _version_info(ctx, model, row)


def _version_by_ref(ctx: Context, model: RegisteredModel, ref: str) -> ModelVersion:
    parsed = parse_reference(ref, {"models"})
    if parsed.version is not None:
        return _version(ctx, model, parsed.version)
    if parsed.alias is None:
        raise InvalidInput(
            f"{ref!r} names a model, not a version: use models:/{parsed.name}/<version> or @<alias>",
            field="ref",
        )
    found = _aliases_of(ctx, model.id).get(parsed.alias)
    if found is not None:
        return found
    if parsed.alias == "latest":
        latest = ctx.session.execute(
            select(ModelVersion).where(ModelVersion.model_id == model.id).order_by(ModelVersion.version.desc()).limit(1)
        ).scalar()
        if latest is not None:
            return latest
        raise NotFound(f"model {model.name!r} has no version yet", model=model.name)
    raise NotFound(f"model {model.name!r} has no alias {parsed.alias!r}", model=model.name, alias=parsed.alias)


def resolve(ctx: Context, ref: str) -> s.VersionInfo:
    """The version a reference names: ``models:/<name>/<version>`` or ``models:/<name>@<alias>``."""
    ctx.require("read")
    parsed = parse_reference(ref, {"models"})
    model = _model(ctx, parsed.name)
    return _version_info(ctx, model, _version_by_ref(ctx, model, ref))


# --- aliases ----------------------------------------------------------------------------------
def set_alias(ctx: Context, name: str, alias: str, version: int) -> s.VersionInfo:
    """Point ``alias`` at ``version``, moving it from where it pointed (one transaction)."""
    ctx.require("write")
    alias = _alias(alias)
    model = _model(ctx, name)
    row = _version(ctx, model, version)
    existing = ctx.session.execute(
        select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias).with_for_update()
    ).scalar()
    previous = None
    if existing is None:
        try:
            with ctx.session.begin_nested():
                ctx.session.add(
                    ModelAlias(
                        model_id=model.id,
                        alias=alias,
                        version_id=row.id,
                        updated_at=ctx.now(),
                        updated_by=ctx.actor.name,
                    )
                )
                ctx.session.flush()
        except IntegrityError:  # set by a concurrent call meanwhile: move it instead
            existing = ctx.session.execute(
                select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias).with_for_update()
            ).scalar_one()
    if existing is not None:
        if existing.version_id == row.id:
            return _version_info(ctx, model, row)
        previous = ctx.session.execute(
            select(ModelVersion.version).where(ModelVersion.id == existing.version_id)
        ).scalar()
        existing.version_id, existing.updated_at, existing.updated_by = row.id, ctx.now(), ctx.actor.name
    ctx.emit("model_alias.set", f"models:/{name}", {"alias": alias, "version": row.version, "previous": previous})
    return _version_info(ctx, model, row)


def delete_alias(ctx: Context, name: str, alias: str) -> None:
    ctx.require("write")
    model = _model(ctx, name)
    existing = ctx.session.execute(
        select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    ).scalar()
    if existing is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}", model=name, alias=alias)
    previous = ctx.session.execute(select(ModelVersion.version).where(ModelVersion.id == existing.version_id)).scalar()
    ctx.session.delete(existing)
    ctx.emit("model_alias.delete", f"models:/{name}", {"alias": alias, "version": None, "previous": previous})

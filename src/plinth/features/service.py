"""The feature registry: plan and apply versioned definitions, list and resolve them.

``apply`` is all or nothing: every object of the batch is checked first (names, references
between objects, each source's schema against its view's declared fields and types),
then each created or changed object gets a new version and one audited event, in one
transaction. Feature views and feature services share a namespace per project, so that
``features:/<name>`` names exactly one thing; entities have their own.

Sources given as local paths are read from the disk of the process that runs the
service: on a server, only a platform admin may apply such a view.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from plinth.core.context import Context
from plinth.core.errors import InvalidInput, NotFound
from plinth.core.hashing import canonical_json, sha256_hex
from plinth.core.ids import new_id
from plinth.features import schemas as s
from plinth.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    OnDemandFeatureView,
    RequestSource,
    dtype_name,
)
from plinth.features.naming import closest, split_ref
from plinth.features.tables import FeatureDefinition, FeatureDefinitionVersion

__all__ = [
    "apply",
    "definition_info",
    "get_definition",
    "list_definitions",
    "plan",
    "resolve_features",
    "sub_context",
]

NAMESPACE = {
    "entity": "entities",
    "feature_view": "features",
    "on_demand_feature_view": "features",
    "feature_service": "features",
}
KIND_LABEL = {
    "entity": "entity",
    "feature_view": "feature view",
    "on_demand_feature_view": "on-demand feature view",
    "feature_service": "feature service",
}
MAX_OBJECTS = 1000
# Bumped by every apply in this process: the online path's cache of resolved definitions
# is dropped when it changes (other processes' applies are seen after CACHE_SECONDS).
_generation = 0
_generation_lock = threading.Lock()


def generation() -> int:
    return _generation


def _bump() -> None:
    global _generation
    with _generation_lock:
        _generation += 1


@contextmanager
def sub_context(ctx: Context) -> Iterator[Context]:
    """A context on its own short transaction, for work around long reads and writes of data."""
    with ctx.stores.db.session() as session:
        yield ctx.with_session(session)


# --- specs ----------------------------------------------------------------------------------------
def normalize_spec(spec: Any) -> dict[str, Any]:
    """Check a definition as JSON (what the SDK sends) by rebuilding it; returns its canonical spec."""
    if not isinstance(spec, dict) or spec.get("kind") not in NAMESPACE:
        raise InvalidInput(
            "each object must be a definition with kind entity, feature_view, on_demand_feature_view or "
            "feature_service",
            field="objects",
        )
    kind = spec["kind"]
    try:
        if kind == "entity":
            return Entity.from_spec(spec).to_spec()
        if kind == "feature_view":
            return FeatureView.from_spec(spec).to_spec()
        if kind == "feature_service":
            return FeatureService.from_spec(spec).to_spec()
        return _normalize_odfv(spec)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(
            f"{KIND_LABEL[kind]} definition is incomplete: missing or wrong {exc}", field="objects"
        ) from None


def _normalize_odfv(spec: dict[str, Any]) -> dict[str, Any]:
    sources: list[Any] = []
    for src in spec["sources"]:
        if "request" in src:
            sources.append(RequestSource(src["request"], [Field.from_spec(f) for f in src["schema"]]))
        else:
            sources.append(src["feature_view"])
    fn = spec.get("function") or {}
    if not isinstance(fn, dict) or not isinstance(fn.get("sha256"), str) or len(fn["sha256"]) != 64:
        raise InvalidInput(
            f"on-demand feature view {spec.get('name')!r}: function must carry its sha256", field="objects"
        )
    odfv = OnDemandFeatureView(
        name=spec["name"],
        sources=sources,
        schema=[Field.from_spec(f) for f in spec["schema"]],
        udf=lambda df: df,
        mode=spec.get("mode", "pandas"),
        owner=spec.get("owner", ""),
        description=spec.get("description", ""),
        tags=spec.get("tags") or None,
    )
    out = odfv.to_spec()
    out["function"] = {
        "name": str(fn.get("name", ""))[:500],
        "source": str(fn.get("source", ""))[:20_000],
        "sha256": fn["sha256"],
    }
    return out


def spec_hash(spec: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(spec).encode())


def _describe_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if key == "schema" and isinstance(a, list) and isinstance(b, list):
            before = {f["name"]: f for f in a}
            after = {f["name"]: f for f in b}
            out += [f"schema: field {n!r} added ({after[n]['dtype']})" for n in after if n not in before]
            out += [f"schema: field {n!r} removed" for n in before if n not in after]
            for n in after:
                if n in before and before[n] != after[n]:
                    if before[n]["dtype"] != after[n]["dtype"]:
                        out.append(f"schema: field {n!r} dtype {before[n]['dtype']} -> {after[n]['dtype']}")
                    else:
                        out.append(f"schema: field {n!r} description or tags changed")
        elif isinstance(a, dict) and isinstance(b, dict) and key != "tags":
            for sub in sorted(set(a) | set(b)):
                if a.get(sub) != b.get(sub) and sub != "source":
                    out.append(f"{key}.{sub}: {a.get(sub)!r} -> {b.get(sub)!r}")
                elif a.get(sub) != b.get(sub):
                    out.append(f"{key}.{sub} changed")
        elif key == "features" and isinstance(a, list) and isinstance(b, list):
            out += [f"features: {r} added" for r in b if r not in a]
            out += [f"features: {r} removed" for r in a if r not in b]
        else:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out


# --- reading the registry -------------------------------------------------------------------------
def _rows(ctx: Context, include_deleted: bool = False) -> list[FeatureDefinition]:
    q = select(FeatureDefinition).where(FeatureDefinition.project_id == ctx.project_id())
    if not include_deleted:
        q = q.where(FeatureDefinition.deleted.is_(False))
    return list(ctx.session.execute(q.order_by(FeatureDefinition.kind, FeatureDefinition.name)).scalars())


def definition_info(row: FeatureDefinition) -> s.DefinitionInfo:
    spec = row.spec
    return s.DefinitionInfo(
        kind=row.kind,  # type: ignore[arg-type]
        name=row.name,
        version=row.latest_version,
        spec=spec,
        owner=spec.get("owner", ""),
        description=spec.get("description", ""),
        tags=spec.get("tags") or {},
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def list_definitions(ctx: Context, kind: str | None = None) -> list[s.DefinitionInfo]:
    ctx.require("read")
    if kind is not None and kind not in NAMESPACE:
        raise InvalidInput(f"kind must be one of {', '.join(NAMESPACE)}, not {kind!r}", field="kind")
    return [definition_info(r) for r in _rows(ctx) if kind is None or r.kind == kind]


def _find(ctx: Context, kind: str | tuple[str, ...], name: str) -> FeatureDefinition:
    kinds = (kind,) if isinstance(kind, str) else kind
    namespace = NAMESPACE[kinds[0]]
    row = ctx.session.execute(
        select(FeatureDefinition).where(
            FeatureDefinition.project_id == ctx.project_id(),
            FeatureDefinition.namespace == namespace,
            FeatureDefinition.name == name,
            FeatureDefinition.deleted.is_(False),
        )
    ).scalar()
    label = " or ".join(KIND_LABEL[k] for k in kinds)
    if row is None or row.kind not in kinds:
        known = [r.name for r in _rows(ctx) if r.kind in kinds]
        raise NotFound(f"no {label} named {name!r} in project {ctx.project!r}{closest(name, known)}", name=name)
    return row


def get_definition(ctx: Context, kind: str, name: str) -> s.DefinitionInfo:
    ctx.require("read")
    if kind not in NAMESPACE:
        raise InvalidInput(f"kind must be one of {', '.join(NAMESPACE)}, not {kind!r}", field="kind")
    return definition_info(_find(ctx, kind, name))


def definition_versions(ctx: Context, row: FeatureDefinition) -> list[s.DefinitionVersionInfo]:
    versions = ctx.session.execute(
        select(FeatureDefinitionVersion)
        .where(FeatureDefinitionVersion.definition_id == row.id)
        .order_by(FeatureDefinitionVersion.version.desc())
    ).scalars()
    return [
        s.DefinitionVersionInfo(
            kind=row.kind,  # type: ignore[arg-type]
            name=row.name,
            version=v.version,
            spec=v.spec,
            created_at=v.created_at,
            created_by=v.created_by,
        )
        for v in versions
    ]


def resolved_of(ctx: Context, row: FeatureDefinition) -> dict[str, Any]:
    v = ctx.session.execute(
        select(FeatureDefinitionVersion).where(
            FeatureDefinitionVersion.definition_id == row.id, FeatureDefinitionVersion.version == row.latest_version
        )
    ).scalar_one()
    return dict(v.resolved or {})


# --- plan and apply -------------------------------------------------------------------------------
@dataclass
class _Batch:
    specs: list[dict[str, Any]]
    current: dict[tuple[str, str], FeatureDefinition]
    changes: list[s.PlanChange] = field(default_factory=list)
    resolved: dict[str, dict[str, Any]] = field(default_factory=dict)


def _collect(ctx: Context, objects: list[Any], prune: bool) -> _Batch:
    if not isinstance(objects, list):
        raise InvalidInput("objects must be a list of definitions", field="objects")
    if len(objects) > MAX_OBJECTS:
        raise InvalidInput(f"at most {MAX_OBJECTS} definitions per apply", field="objects")
    specs = [normalize_spec(o) for o in objects]
    seen: dict[tuple[str, str], str] = {}
    for spec in specs:
        key = (NAMESPACE[spec["kind"]], spec["name"])
        if key in seen:
            what = "an entity" if key[0] == "entities" else "a feature view, on-demand view or feature service"
            raise InvalidInput(
                f"the name {spec['name']!r} is used twice for {what} "
                f"({KIND_LABEL[seen[key]]} and {KIND_LABEL[spec['kind']]})",
                field="objects",
                name=spec["name"],
            )
        seen[key] = spec["kind"]
    current = {(r.namespace, r.name): r for r in _rows(ctx)}
    batch = _Batch(specs=specs, current=current)
    for spec in specs:
        row = current.get((NAMESPACE[spec["kind"]], spec["name"]))
        if row is None:
            batch.changes.append(
                s.PlanChange(kind=spec["kind"], name=spec["name"], action="create", to_version=_next_version(ctx, spec))
            )
        elif row.kind != spec["kind"]:
            raise InvalidInput(
                f"{spec['name']!r} is a {KIND_LABEL[row.kind]} already; "
                f"a {KIND_LABEL[spec['kind']]} needs another name",
                field="objects",
                name=spec["name"],
            )
        elif row.spec_hash == spec_hash(spec):
            batch.changes.append(
                s.PlanChange(
                    kind=spec["kind"],
                    name=spec["name"],
                    action="unchanged",
                    from_version=row.latest_version,
                    to_version=row.latest_version,
                )
            )
        else:
            batch.changes.append(
                s.PlanChange(
                    kind=spec["kind"],
                    name=spec["name"],
                    action="update",
                    from_version=row.latest_version,
                    to_version=row.latest_version + 1,
                    changes=_describe_changes(row.spec, spec),
                )
            )
    for key, row in current.items():
        if key not in seen:
            batch.changes.append(
                s.PlanChange(
                    kind=row.kind,  # type: ignore[arg-type]
                    name=row.name,
                    action="remove" if prune else "keep",
                    from_version=row.latest_version,
                )
            )
    _check_references(ctx, batch, prune)
    return batch


def _next_version(ctx: Context, spec: dict[str, Any]) -> int:
    """1 for a new name; after the last version for a name that was removed and comes back."""
    row = ctx.session.execute(
        select(FeatureDefinition).where(
            FeatureDefinition.project_id == ctx.project_id(),
            FeatureDefinition.namespace == NAMESPACE[spec["kind"]],
            FeatureDefinition.name == spec["name"],
        )
    ).scalar()
    return 1 if row is None else row.latest_version + 1


def _check_references(ctx: Context, batch: _Batch, prune: bool) -> None:
    """Every reference between objects resolves in the registry as it will be after apply."""
    final: dict[tuple[str, str], dict[str, Any]] = {}
    if not prune:
        final.update({k: r.spec for k, r in batch.current.items()})
    for spec in batch.specs:
        final[(NAMESPACE[spec["kind"]], spec["name"])] = spec
    entities = {name: spec for (ns, name), spec in final.items() if ns == "entities"}
    views = {name: spec for (ns, name), spec in final.items() if ns == "features" and spec["kind"] == "feature_view"}
    odfvs = {
        name: spec
        for (ns, name), spec in final.items()
        if ns == "features" and spec["kind"] == "on_demand_feature_view"
    }
    changed = {(c.kind, c.name) for c in batch.changes if c.action in {"create", "update"}}
    refs = {f"{v}:{f['name']}" for v, spec in views.items() for f in spec["schema"]}
    refs |= {f"{v}:{f['name']}" for v, spec in odfvs.items() for f in spec["schema"]}
    for name, spec in views.items():
        for e in spec["entities"]:
            if e not in entities:
                raise InvalidInput(
                    f"feature view {name!r} uses entity {e!r}, which is neither in the registry nor in this apply"
                    f"{closest(e, sorted(entities))}",
                    field="entities",
                    name=name,
                )
        keys = [k for e in spec["entities"] for k in entities[e]["join_keys"]]
        clash = sorted({f["name"] for f in spec["schema"]} & set(keys))
        if clash:
            raise InvalidInput(f"feature view {name!r}: join key {clash[0]!r} cannot also be a feature", field="schema")
        if ("feature_view", name) in changed:
            batch.resolved[name] = _check_source(ctx, name, spec, keys)
    for name, spec in odfvs.items():
        for src in spec["sources"]:
            v = src.get("feature_view")
            if v is not None and v not in views:
                raise InvalidInput(
                    f"on-demand feature view {name!r} reads feature view {v!r}, which is neither in the registry nor "
                    f"in this apply{closest(v, sorted(views))}",
                    field="sources",
                    name=name,
                )
    for (_ns, name), spec in final.items():
        if spec["kind"] != "feature_service":
            continue
        for ref in spec["features"]:
            if ref not in refs:
                view, _ = split_ref(ref)
                why = (
                    "no such feature view"
                    if view not in views and view not in odfvs
                    else f"{view!r} has no such feature"
                )
                raise InvalidInput(
                    f"feature service {name!r} uses {ref!r}: {why}{closest(ref, sorted(refs))}",
                    field="features",
                    name=name,
                )


def _check_source(ctx: Context, name: str, spec: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    from plinth.features.sources import check_schema, is_path_source, open_source

    src = spec["source"]
    if is_path_source(src["uri"]) and not ctx.actor.can("global_admin", ctx.project):
        from plinth.core.errors import PermissionDenied

        raise PermissionDenied(
            f"feature view {name!r} reads {src['uri']!r} from the server's disk; only a platform admin may apply a "
            "path source (use a datasets:/ source instead)"
        )
    opened = open_source(ctx, src["uri"])
    key_types = check_schema(
        opened.schema,
        what=f"source {src['uri']!r} of feature view {name!r}",
        fields={f["name"]: f["dtype"] for f in spec["schema"]},
        keys=keys,
        timestamp_field=src["timestamp_field"],
        created_field=src.get("created_field"),
    )
    return {"join_keys": keys, "join_key_types": key_types, "source_ref": opened.ref}


def plan(ctx: Context, objects: list[Any], prune: bool = False) -> s.Plan:
    """What ``apply`` would change, after the same checks (nothing is written)."""
    ctx.require("read")
    return s.Plan(changes=_collect(ctx, objects, prune).changes)


def apply(ctx: Context, objects: list[Any], prune: bool = False) -> s.ApplyResult:
    """Store the definitions: a new version of each created or changed one, one event each."""
    ctx.require("write")
    batch = _collect(ctx, objects, prune)
    now = ctx.now()
    by_name = {(NAMESPACE[sp["kind"]], sp["name"]): sp for sp in batch.specs}
    applied: list[s.DefinitionInfo] = []
    views: list[ViewPlan] = []
    project_id = ctx.project_id()
    for change in batch.changes:
        key = (NAMESPACE[change.kind], change.name)
        if change.action == "remove":
            row = batch.current[key]
            row.deleted, row.updated_at, row.updated_by = True, now, ctx.actor.name
            ctx.emit(
                f"features.{change.kind}.remove",
                f"features:/{change.name}",
                {"kind": change.kind, "version": row.latest_version},
            )
            continue
        if change.action not in {"create", "update"}:
            continue
        spec = by_name[key]
        digest = spec_hash(spec)
        found = ctx.session.execute(
            select(FeatureDefinition).where(
                FeatureDefinition.project_id == project_id,
                FeatureDefinition.namespace == key[0],
                FeatureDefinition.name == change.name,
            )
        ).scalar()
        if found is None:
            row = FeatureDefinition(
                id=new_id(),
                project_id=project_id,
                namespace=key[0],
                kind=change.kind,
                name=change.name,
                latest_version=1,
                spec=spec,
                spec_hash=digest,
                deleted=False,
                created_at=now,
                created_by=ctx.actor.name,
                updated_at=now,
                updated_by=ctx.actor.name,
            )
            ctx.session.add(row)
        else:
            row = found
            row.latest_version += 1
            row.kind, row.spec, row.spec_hash, row.deleted = change.kind, spec, digest, False
            row.updated_at, row.updated_by = now, ctx.actor.name
        ctx.session.flush()
        ctx.session.add(
            FeatureDefinitionVersion(
                id=new_id(),
                definition_id=row.id,
                version=row.latest_version,
                spec=spec,
                spec_hash=digest,
                resolved=batch.resolved.get(change.name, {}) if change.kind == "feature_view" else {},
                created_at=now,
                created_by=ctx.actor.name,
            )
        )
        ctx.emit(
            f"features.{change.kind}.apply",
            f"features:/{change.name}",
            {"kind": change.kind, "version": row.latest_version, "changes": change.changes[:50]},
        )
        if change.kind == "feature_view":
            resolved = batch.resolved.get(change.name, {})
            _record_source_lineage(ctx, change.name, row.latest_version, resolved)
            views.append(_view_plan(ctx, row.name, row.latest_version, row.spec, resolved, row.id))
        applied.append(definition_info(row))
    ctx.session.flush()
    _bump()
    if views:  # built once the definitions are committed: the first retrieval finds them ready
        from plinth.features.index import build_after_commit

        build_after_commit(ctx, views)
    return s.ApplyResult(plan=s.Plan(changes=batch.changes), applied=applied)


def _view_plan(
    ctx: Context, name: str, version: int, spec: dict[str, Any], resolved: dict[str, Any], row_id: str
) -> ViewPlan:
    keys = resolved.get("join_keys") or _join_keys(ctx, spec)
    features = [f["name"] for f in spec["schema"]]
    return ViewPlan(name, version, spec, keys, resolved.get("join_key_types", {}), features, row_id)


def _record_source_lineage(ctx: Context, view: str, version: int, resolved: dict[str, Any]) -> None:
    ref = resolved.get("source_ref", "")
    if ref.startswith("datasets:/"):
        from plinth.data.lineage_graph import add_edge

        add_edge(ctx, ref, f"features:/{view}/{version}", "source")


# --- resolving feature references -----------------------------------------------------------------
@dataclass
class ViewPlan:
    name: str
    version: int
    spec: dict[str, Any]
    join_keys: list[str]
    key_types: dict[str, str]
    features: list[str]  # requested (or needed by an on-demand view), in order
    id: str = ""  # the definition's id: names the view's table in the online store

    @property
    def ttl_us(self) -> int | None:
        ttl = self.spec.get("ttl_seconds")
        return None if not ttl else int(round(ttl * 1_000_000))

    @property
    def dtypes(self) -> dict[str, str]:
        return {f["name"]: f["dtype"] for f in self.spec["schema"]}

    @property
    def lineage_ref(self) -> str:
        return f"features:/{self.name}/{self.version}"


@dataclass
class OdfvPlan:
    name: str
    version: int
    spec: dict[str, Any]
    features: list[str]
    inputs: list[tuple[str, str]]  # (view, feature) read by the function
    request_fields: dict[str, str]  # name -> dtype


@dataclass
class Resolution:
    refs: list[str]
    views: list[ViewPlan]
    odfvs: list[OdfvPlan]
    hidden: set[tuple[str, str]]  # fetched only as inputs of on-demand views
    service: str | None = None

    def column(self, view: str, feature: str, full: bool) -> str:
        return f"{view}__{feature}" if full else feature


def resolve_features(ctx: Context, features: list[str] | None = None, feature_service: str | None = None) -> Resolution:
    """The views (latest versions) and features that ``features`` or a service names."""
    if (features is None) == (feature_service is None):
        raise InvalidInput("give either features=[...] or feature_service=, not both or neither", field="features")
    service = None
    if feature_service is not None:
        if isinstance(feature_service, str) and feature_service.startswith("features:/"):
            feature_service = feature_service[len("features:/") :]
        row = _find(ctx, "feature_service", str(feature_service))
        refs = list(row.spec["features"])
        service = row.name
    else:
        if isinstance(features, str) or not isinstance(features, list | tuple) or not features:
            raise InvalidInput("features must be a non-empty list of 'view:feature' references", field="features")
        refs = list(dict.fromkeys(features))
    rows = {r.name: r for r in _rows(ctx) if r.namespace == "features"}
    known = sorted(
        f"{r.name}:{f['name']}" for r in rows.values() if r.kind != "feature_service" for f in r.spec["schema"]
    )
    wanted: dict[str, list[str]] = {}
    for ref in refs:
        view, feat = split_ref(ref)
        hit = rows.get(view)
        if hit is None or hit.kind == "feature_service" or feat not in {f["name"] for f in hit.spec["schema"]}:
            what = "no feature view" if hit is None or hit.kind == "feature_service" else "no feature"
            raise InvalidInput(
                f"unknown feature {ref!r} ({what} of that name){closest(ref, known)}", field="features", feature=ref
            )
        wanted.setdefault(view, []).append(feat)
    odfvs: list[OdfvPlan] = []
    hidden: set[tuple[str, str]] = set()
    for name in [v for v in wanted if rows[v].kind == "on_demand_feature_view"]:
        row = rows[name]
        inputs = []
        for src in row.spec["sources"]:
            v = src.get("feature_view")
            if v is None:
                continue
            vrow = rows.get(v)
            if vrow is None or vrow.kind != "feature_view":
                raise InvalidInput(
                    f"on-demand feature view {name!r} reads {v!r}, which is not in the registry any more"
                )
            for f in vrow.spec["schema"]:
                inputs.append((v, f["name"]))
                if f["name"] not in wanted.get(v, []):
                    hidden.add((v, f["name"]))
                    wanted.setdefault(v, []).append(f["name"])
        request = {f["name"]: f["dtype"] for src in row.spec["sources"] if "request" in src for f in src["schema"]}
        odfvs.append(OdfvPlan(name, row.latest_version, row.spec, wanted[name], inputs, request))
    views = []
    for name, feats in wanted.items():
        row = rows[name]
        if row.kind != "feature_view":
            continue
        resolved = resolved_of(ctx, row)
        keys = resolved.get("join_keys") or _join_keys(ctx, row.spec)
        views.append(
            ViewPlan(name, row.latest_version, row.spec, keys, resolved.get("join_key_types", {}), feats, row.id)
        )
    return Resolution(refs=refs, views=views, odfvs=odfvs, hidden=hidden, service=service)


def _join_keys(ctx: Context, spec: dict[str, Any]) -> list[str]:
    keys = []
    for e in spec["entities"]:
        keys.extend(_find(ctx, "entity", e).spec["join_keys"])
    return keys


def declared_dtype(value: Any) -> str:
    return dtype_name(value)

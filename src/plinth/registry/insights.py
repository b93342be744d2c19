"""What the registry can tell about its models: history from the event log, side-by-side
comparison of versions, and model cards.

History is answered from the append-only event log, never from the current tables: the
events of ``models:/<name>`` up to the moment asked about are replayed (versions created,
stages moved, aliases set and removed), so the answer is what was true then, even after
aliases moved and versions were archived.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from plinth.core.context import Context
from plinth.core.errors import InvalidInput
from plinth.registry import schemas as s
from plinth.registry.service import (
    _finite,
    _model,
    _text,
    _version,
    _version_by_ref,
    version_number,
)
from plinth.registry.stages import approvals_of_version
from plinth.store.events import Event, utc_iso

MAX_COMPARE = 20


def parse_moment(value: object) -> datetime:
    """A moment from ``2026-11-01T12:00Z``, ``2026-11-01 12:00:00+02:00``, ``2026-11-01``... (UTC if no zone)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"at {value!r} is not a time such as 2026-11-01T12:00Z", field="at") from None
    else:
        raise InvalidInput(f"at {value!r} is not a time such as 2026-11-01T12:00Z", field="at")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# --- history ----------------------------------------------------------------------------------
def history(ctx: Context, name: str, at: datetime | str | None = None) -> s.ModelHistory:
    """Aliases and stages of ``name`` as they were at ``at`` (now when None), from the event log."""
    ctx.require("read")
    moment = parse_moment(at) if at is not None else None
    _model(ctx, name)
    query = select(Event).where(Event.project == ctx.project, Event.resource == f"models:/{name}")
    if moment is not None:
        query = query.where(Event.at <= utc_iso(moment))
    aliases: dict[str, int] = {}
    stages: dict[int, str] = {}
    events: list[s.HistoryEvent] = []
    for ev in ctx.session.execute(query.order_by(Event.seq)).scalars():
        summary = json.loads(ev.summary)
        version = summary.get("version") if isinstance(summary.get("version"), int) else None
        if ev.action == "model_version.create" and version is not None:
            stages[version] = "development"
        elif ev.action == "model_version.stage" and version is not None:
            stages[version] = str(summary.get("to"))
        elif ev.action == "model_alias.set" and version is not None:
            aliases[str(summary.get("alias"))] = version
        elif ev.action == "model_alias.delete":
            aliases.pop(str(summary.get("alias")), None)
        events.append(
            s.HistoryEvent(seq=ev.seq, at=ev.at, actor=ev.actor, action=ev.action, version=version, summary=summary)
        )
    return s.ModelHistory(
        name=name,
        at=moment,
        aliases=dict(sorted(aliases.items())),
        stages={str(v): st for v, st in sorted(stages.items())},
        production=sorted(v for v, st in stages.items() if st == "production"),
        events=events,
    )


# --- comparison -------------------------------------------------------------------------------
def _columns(signature: dict[str, Any] | None) -> dict[str, str] | None:
    inputs = (signature or {}).get("inputs") or {}
    if inputs.get("kind") != "columns":
        return None
    return {c["name"]: c["type"] for c in inputs.get("columns", [])}


def _describe(signature: dict[str, Any] | None) -> str:
    inputs = (signature or {}).get("inputs")
    if not inputs:
        return "no signature"
    if inputs.get("kind") == "tensor":
        return f"{inputs.get('dtype')} tensor {tuple(inputs.get('shape', []))}"
    return ", ".join(f"{c['name']}: {c['type']}" for c in inputs.get("columns", []))


def _signature_changes(base: int, base_sig: Any, other: int, other_sig: Any) -> list[str]:
    if _describe(base_sig) == _describe(other_sig):
        return []
    a, b = _columns(base_sig), _columns(other_sig)
    if a is None or b is None:
        return [f"v{other}: inputs are {_describe(other_sig)} (v{base}: {_describe(base_sig)})"]
    changes = [f"v{other}: adds column {c!r} ({b[c]})" for c in b if c not in a]
    changes += [f"v{other}: drops column {c!r} ({a[c]})" for c in a if c not in b]
    changes += [f"v{other}: column {c!r} is {b[c]} (was {a[c]})" for c in a if c in b and a[c] != b[c]]
    if not changes and list(a) != list(b):
        changes.append(f"v{other}: reorders the columns")
    return changes


def compare_versions(ctx: Context, name: str, versions: list[int]) -> s.VersionComparison:
    """Metrics, params and signatures of several versions side by side."""
    ctx.require("read")
    if not isinstance(versions, list | tuple) or not versions:
        raise InvalidInput("give the versions to compare, e.g. [1, 2]", field="versions")
    numbers = list(dict.fromkeys(version_number(v) for v in versions))
    if len(numbers) > MAX_COMPARE:
        raise InvalidInput(f"compare at most {MAX_COMPARE} versions at once", field="versions")
    model = _model(ctx, name)
    rows = [_version(ctx, model, v) for v in numbers]
    keys = [str(r.version) for r in rows]
    metric_names = sorted({m for r in rows for m in (r.lineage or {}).get("metrics", {})})
    param_names = sorted({p for r in rows for p in (r.lineage or {}).get("params", {})})
    metrics = {
        m: {str(r.version): _finite((r.lineage or {}).get("metrics", {}).get(m)) for r in rows} for m in metric_names
    }
    params = {p: {str(r.version): (r.lineage or {}).get("params", {}).get(p) for r in rows} for p in param_names}
    changes: list[str] = []
    for r in rows[1:]:
        changes += _signature_changes(rows[0].version, rows[0].signature, r.version, r.signature)
    return s.VersionComparison(
        name=name,
        versions=numbers,
        stages=dict(zip(keys, (r.stage for r in rows), strict=True)),
        flavors=dict(zip(keys, (r.flavor for r in rows), strict=True)),
        sources=dict(zip(keys, (r.source for r in rows), strict=True)),
        metrics=metrics,
        params=params,
        differing_params=[p for p, values in params.items() if len(set(values.values())) > 1],
        signatures={str(r.version): _describe(r.signature) for r in rows},
        signature_changes=changes,
    )


# --- model cards ------------------------------------------------------------------------------
def _card_version(ctx: Context, model: Any, ref: str | int | None) -> Any:
    """The version a card is about: a number, an alias, or production (else the latest)."""
    from plinth.registry.tables import ModelVersion

    if ref is None or ref == "":
        row = ctx.session.execute(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by((ModelVersion.stage == "production").desc(), ModelVersion.version.desc())
            .limit(1)
        ).scalar()
        if row is None:
            from plinth.core.errors import NotFound

            raise NotFound(f"model {model.name!r} has no version yet", model=model.name)
        return row
    text = str(ref)
    if text.isdigit():
        return _version(ctx, model, text)
    return _version_by_ref(ctx, model, f"models:/{model.name}@{text}")


def get_card(ctx: Context, name: str, ref: str | None = None) -> s.ModelCard:
    """The model card of a version: what the registry knows plus what people wrote."""
    ctx.require("read")
    model = _model(ctx, name)
    row = _card_version(ctx, model, ref)
    lineage = row.lineage or {}
    from plinth.registry.service import _aliases_of

    aliases = sorted(a for a, v in _aliases_of(ctx, model.id).items() if v.id == row.id)
    approvals = [
        {
            "status": a.status,
            "requested_by": a.requested_by,
            "requested_at": a.requested_at.isoformat(),
            "reason": a.reason,
            "decided_by": a.decided_by,
            "decided_at": a.decided_at.isoformat() if a.decided_at else None,
            "comment": a.comment,
        }
        for a in approvals_of_version(ctx, row.id)
    ]
    generated = {
        "description": model.description,
        "owner": model.owner,
        "tags": model.tags or {},
        "version_description": row.description,
        "flavor": row.flavor,
        "stage": row.stage,
        "aliases": aliases,
        "source": row.source,
        "registered_at": row.created_at.isoformat(),
        "registered_by": row.created_by,
        "run": lineage.get("run"),
        "datasets": lineage.get("datasets", []),
        "features": lineage.get("features", []),
        "code": lineage.get("code", {}),
        "metrics": lineage.get("metrics", {}),
        "params": lineage.get("params", {}),
        "signature": row.signature,
        "signature_text": _describe(row.signature),
        "approvals": approvals,
        "version_tags": row.tags or {},
    }
    ref_text = f"models:/{name}@{ref}" if ref and not str(ref).isdigit() else f"models:/{name}/{row.version}"
    return s.ModelCard(
        name=name,
        version=row.version,
        ref=ref_text,
        stage=row.stage,
        generated=generated,
        fields={k: v for k, v in (model.card or {}).items() if k in s.CARD_FIELDS},
    )


def update_card(ctx: Context, name: str, fields: dict[str, str], ref: str | None = None) -> s.ModelCard:
    """Set the card fields people write (purpose, intended use, limitations...); '' clears one."""
    ctx.require("write")
    if not isinstance(fields, dict) or not fields:
        raise InvalidInput(f"give the card fields to set, among {', '.join(s.CARD_FIELDS)}", field="fields")
    model = _model(ctx, name)
    card = dict(model.card or {})
    for key, value in fields.items():
        if key not in s.CARD_FIELDS:
            raise InvalidInput(f"card field {key!r} is not one of {', '.join(s.CARD_FIELDS)}", field=key)
        text = _text(value, key).strip()
        if text:
            card[key] = text
        else:
            card.pop(key, None)
    model.card = card
    model.updated_at = ctx.now()
    ctx.emit("model_card.update", f"models:/{name}", {"fields": sorted(fields)})
    return get_card(ctx, name, ref)

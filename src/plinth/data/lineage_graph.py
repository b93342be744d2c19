"""The lineage graph: edges between references, recorded by services as they act.

An edge ``src -> dst`` says that ``src`` fed ``dst``: ``datasets:/churn/3 -> runs:/<id>``
(kind ``input``: the run read that version), ``runs:/<id> -> datasets:/scores/1`` (kind
``output``: the run wrote it). :func:`lineage` walks the graph upstream ("what was this
made from") or downstream ("what used this").
"""

from __future__ import annotations

from collections import deque

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from plinth.core.context import Context
from plinth.core.errors import InvalidInput, NotFound
from plinth.core.ids import new_id
from plinth.core.uris import parse_reference
from plinth.data.schemas import LineageEdgeInfo, LineageGraph
from plinth.data.tables import LineageEdge

__all__ = ["add_edge", "ensure_run", "lineage", "record_lineage", "run_ref"]

MAX_DEPTH = 20
MAX_EDGES = 5000
KIND_LENGTH = 50


def run_ref(run_id: str) -> str:
    """``runs:/<id>`` for a run id (the id checked as a reference name)."""
    ref = parse_reference(f"runs:/{run_id}") if isinstance(run_id, str) else None
    if ref is None or ref.version is not None:
        raise InvalidInput(f"run id {run_id!r} is not valid", field="run_id")
    return str(ref)


def ensure_run(ctx: Context, run_id: str) -> str:
    """``runs:/<id>`` of a run that exists (checked when the tracking area is installed)."""
    ref = run_ref(run_id)
    try:
        from plinth.tracking.tables import Run
    except ImportError:  # pragma: no cover - the tracking area ships with Plinth
        return ref
    if ctx.session.get(Run, run_id) is None:
        raise NotFound(f"run {run_id!r} does not exist", run_id=run_id)
    return ref


def _node(value: str) -> str:
    ref = parse_reference(value)
    if ref.kind == "runs" and ref.version is not None:
        raise InvalidInput(
            f"{value!r}: a lineage node names a run, not a file in it", field="reference"
        )
    return str(ref)


def add_edge(ctx: Context, src: str, dst: str, kind: str) -> LineageEdge:
    """Record ``src -> dst`` once (idempotent) in the current transaction."""
    project_id = ctx.project_id()
    existing = ctx.session.execute(
        select(LineageEdge).where(
            LineageEdge.project_id == project_id,
            LineageEdge.src == src,
            LineageEdge.dst == dst,
            LineageEdge.kind == kind,
        )
    ).scalar()
    if existing is not None:
        return existing
    edge = LineageEdge(
        id=new_id(),
        project_id=project_id,
        src=src,
        dst=dst,
        kind=kind,
        created_at=ctx.now(),
        created_by=ctx.actor.name,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(edge)
            ctx.session.flush()
    except IntegrityError:  # recorded meanwhile by a concurrent call
        return ctx.session.execute(
            select(LineageEdge).where(
                LineageEdge.project_id == project_id,
                LineageEdge.src == src,
                LineageEdge.dst == dst,
                LineageEdge.kind == kind,
            )
        ).scalar_one()
    ctx.emit("lineage.record", dst, {"src": src, "kind": kind})
    return edge


def record_lineage(ctx: Context, src: str, dst: str, kind: str = "derived") -> LineageEdgeInfo:
    """Record that ``src`` fed ``dst`` (references), e.g. a feature view built from a dataset."""
    ctx.require("write")
    if (
        not isinstance(kind, str)
        or not kind
        or len(kind) > KIND_LENGTH
        or not kind.replace("_", "").isalnum()
    ):
        raise InvalidInput("kind must be a short word (letters, digits, '_')", field="kind")
    src, dst = _node(src), _node(dst)
    if src == dst:
        raise InvalidInput("an edge needs two different nodes", field="dst")
    return LineageEdgeInfo.model_validate(add_edge(ctx, src, dst, kind))


def _start_nodes(ctx: Context, ref: str) -> tuple[str, list[str]]:
    """The node(s) a query starts from; a dataset without a version means all its versions."""
    parsed = parse_reference(ref)
    if parsed.kind != "datasets":
        node = _node(ref)
        return node, [node]
    if parsed.alias is not None or parsed.version is not None:
        from plinth.data.service import resolve

        dataset, version = resolve(ctx, ref)
        node = f"datasets:/{dataset.name}/{version.version}"
        return node, [node]
    prefix = f"datasets:/{parsed.name}/"
    project_id = ctx.project_id()
    found: set[str] = set()
    for column in (LineageEdge.src, LineageEdge.dst):
        found.update(
            ctx.session.execute(
                select(column).where(
                    LineageEdge.project_id == project_id, column.startswith(prefix, autoescape=True)
                )
            ).scalars()
        )
    return str(parsed), sorted(found)


def lineage(
    ctx: Context, ref: str, direction: str = "both", depth: int = MAX_DEPTH
) -> LineageGraph:
    """The edges reachable from ``ref`` upstream, downstream, or both, up to ``depth`` hops."""
    ctx.require("read")
    if direction not in {"upstream", "downstream", "both"}:
        raise InvalidInput(
            "direction must be 'upstream', 'downstream' or 'both'", field="direction"
        )
    if not isinstance(depth, int) or depth < 1:
        raise InvalidInput("depth must be a positive number", field="depth")
    depth = min(depth, MAX_DEPTH)
    project_id = ctx.project_id()
    label, starts = _start_nodes(ctx, ref)
    seen_edges: dict[str, LineageEdge] = {}
    nodes: set[str] = set(starts)
    for way in ("upstream", "downstream"):
        if direction not in {way, "both"}:
            continue
        column = LineageEdge.dst if way == "upstream" else LineageEdge.src
        frontier = deque((s, 0) for s in starts)
        visited: set[str] = set()
        while frontier and len(seen_edges) < MAX_EDGES:
            node, hops = frontier.popleft()
            if node in visited or hops >= depth:
                continue
            visited.add(node)
            edges = ctx.session.execute(
                select(LineageEdge).where(LineageEdge.project_id == project_id, column == node)
            ).scalars()
            for e in edges:
                seen_edges[e.id] = e
                nodes.update((e.src, e.dst))
                frontier.append((e.src if way == "upstream" else e.dst, hops + 1))
    ordered = sorted(seen_edges.values(), key=lambda e: (e.created_at, e.id))
    return LineageGraph(
        ref=label,
        direction=direction,
        nodes=sorted(nodes),
        edges=[LineageEdgeInfo.model_validate(e) for e in ordered],
    )


def edges_of(ctx: Context, node: str) -> list[LineageEdgeInfo]:
    """Every edge touching ``node`` (for pages that show a node's neighbours)."""
    ctx.require("read")
    rows = ctx.session.execute(
        select(LineageEdge)
        .where(
            LineageEdge.project_id == ctx.project_id(),
            or_(LineageEdge.src == node, LineageEdge.dst == node),
        )
        .order_by(LineageEdge.created_at)
    ).scalars()
    return [LineageEdgeInfo.model_validate(e) for e in rows]

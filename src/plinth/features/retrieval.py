"""Historical retrieval: point-in-time correct feature values for an entity frame, returned
as Arrow or written as a dataset version (a *training set*) with its lineage.

Lineage of a training set: ``<source version> -> features:/<view>/<version>`` (kind
``source``), ``features:/<view>/<version> -> datasets:/<set>/<n>`` (kind ``features``),
``features:/<service> -> datasets:/<set>/<n>`` when a service named the features, and,
inside a tracked run, ``datasets:/<set>/<n> -> runs:/<id>`` and ``features:/<service> ->
runs:/<id>`` (kind ``input``), which the model registry reads when a model of that run is
registered.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

from plinth.core.context import Context
from plinth.core.errors import InvalidInput
from plinth.core.ids import new_id
from plinth.features import schemas as s
from plinth.features import service as registry
from plinth.features.offline import as_arrow, join, prepare_entities
from plinth.features.service import Resolution, sub_context

__all__ = ["create_training_set", "get_historical_features", "open_historical"]


def _resolve(ctx: Context, features: list[str] | None, feature_service: str | None) -> Resolution:
    with sub_context(ctx) as sub:
        return registry.resolve_features(sub, features, feature_service)


def _check_flags(full_feature_names: Any, timestamp_column: Any) -> None:
    if not isinstance(full_feature_names, bool):
        raise InvalidInput("full_feature_names must be True or False", field="full_feature_names")
    if not isinstance(timestamp_column, str) or not timestamp_column:
        raise InvalidInput("timestamp_column must name a column of the entity frame", field="timestamp_column")


def get_historical_features(
    ctx: Context,
    entity_df: Any,
    features: list[str] | None = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
) -> pa.Table:
    """Every entity row with, for each feature, its point-in-time correct value (or null)."""
    ctx.require("read")
    _check_flags(full_feature_names, timestamp_column)
    res = _resolve(ctx, features, feature_service)
    entities = prepare_entities(as_arrow(entity_df), timestamp_column, res)
    table, _used = join(ctx, entities, res, full_feature_names)
    return table  # type: ignore[no-any-return]


def open_historical(
    ctx: Context,
    entity_df: Any,
    features: list[str] | None = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
) -> tuple[dict[str, Any], pa.RecordBatchReader]:
    """Like :func:`get_historical_features`, as a stream of record batches (for the REST door)."""
    ctx.require("read")
    _check_flags(full_feature_names, timestamp_column)
    res = _resolve(ctx, features, feature_service)
    entities = prepare_entities(as_arrow(entity_df), timestamp_column, res)
    reader, used = join(ctx, entities, res, full_feature_names, stream=True)
    if isinstance(reader, pa.Table):
        reader = pa.RecordBatchReader.from_batches(reader.schema, reader.to_batches())
    return {"views": [v.lineage_ref for v, _ in used], "sources": [r for _, r in used]}, reader


def create_training_set(
    ctx: Context,
    name: str,
    entity_df: Any,
    features: list[str] | None = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
    timestamp_column: str = "event_timestamp",
    run_id: str | None = None,
    description: str | None = None,
    tags: list[str] | None = None,
) -> s.TrainingSetInfo:
    """Write the point-in-time join as the next version of dataset ``name``, with lineage."""
    from plinth.core.names import validate_name
    from plinth.data.ingestion import ingest
    from plinth.data.lineage_graph import add_edge, ensure_run

    ctx.require("write")
    started = time.perf_counter()
    validate_name(name, "dataset")
    _check_flags(full_feature_names, timestamp_column)
    res = _resolve(ctx, features, feature_service)
    run_ref = None
    if run_id is not None:
        with sub_context(ctx) as sub:
            run_ref = ensure_run(sub, run_id)
    entities = prepare_entities(as_arrow(entity_df), timestamp_column, res)
    data, used = join(ctx, entities, res, full_feature_names, stream=True)  # streamed into Delta
    result = ingest(
        ctx,
        name,
        data,
        mode="overwrite",
        allow_breaking=True,
        tags=tags,
        description=description or f"training set: {', '.join(res.refs)[:400]}",
    )
    dataset_ref = result.version.ref
    views = [v.lineage_ref for v, _ in used]
    with sub_context(ctx) as sub:
        for view, source in used:
            if source.startswith("datasets:/"):
                add_edge(sub, source, view.lineage_ref, "source")
            add_edge(sub, view.lineage_ref, dataset_ref, "features")
        if res.service is not None:
            add_edge(sub, f"features:/{res.service}", dataset_ref, "features")
        if run_ref is not None:
            add_edge(sub, dataset_ref, run_ref, "input")
            if res.service is not None:
                add_edge(sub, f"features:/{res.service}", run_ref, "input")
        from plinth.features.tables import TrainingSet

        sub.session.add(
            TrainingSet(
                id=new_id(),
                project_id=sub.project_id(),
                dataset_ref=dataset_ref,
                features=list(res.refs),
                views=views,
                feature_service=res.service,
                run_id=run_id,
                entity_rows=result.version.rows_written,
                created_at=sub.now(),
                created_by=sub.actor.name,
            )
        )
        sub.emit(
            "features.training_set",
            dataset_ref,
            {"features": list(res.refs)[:200], "views": views, "service": res.service, "run": run_id},
        )
    return s.TrainingSetInfo(
        dataset=dataset_ref,
        rows=result.version.rows_written,
        features=list(res.refs),
        views=views,
        sources=[src for _, src in used],
        feature_service=res.service,
        run_id=run_id,
        seconds=round(time.perf_counter() - started, 4),
    )

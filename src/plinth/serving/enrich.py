"""Feature-enriched serving: a request carries entity keys; the model's inputs it does not carry
are filled from the online feature store before prediction.

>>> enricher = FeatureEnricher(["features:/driver_activity"])           # doctest: +SKIP
>>> server = ModelServer([load_served("models:/eta/1")], ServingOptions(features=("features:/driver_activity",)))
... # doctest: +SKIP

Which inputs are filled: for a model with named column inputs, each input that the request does
not carry and that the features provide (a value in the request wins over the store); for a model
without a signature, every feature the request does not carry. Entity keys that are not model
inputs are dropped after the lookup. Every column of the request goes to the lookup as entity
rows, so on-demand feature views get their request data too.

An entity with no online value (never materialized, or older than the view's ttl) is refused by
default: NotFound (HTTP 404, gRPC NOT_FOUND) naming the entity and the feature. With
``missing="null"`` it is served as the online store gives it, null, for models that take nulls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from plinth.core.errors import InvalidInput, NotFound
from plinth.models.signature import Signature, TensorSpec
from plinth.serving.protocol import to_v2_datatype

__all__ = ["MISSING", "FeatureEnricher", "parse_feature_refs"]

MISSING = ("error", "null")


def parse_feature_refs(refs: Sequence[str]) -> tuple[list[str] | None, str | None]:
    """``(features, feature_service)`` from ``--features`` values: one ``features:/SERVICE``, or
    ``view:feature`` references (each value may hold several, comma-separated)."""
    items = [part.strip() for ref in refs for part in ref.split(",") if part.strip()]
    if not items:
        raise InvalidInput("give a feature service (features:/NAME) or view:feature references", field="features")
    services = [i for i in items if i.startswith("features:/")]
    if services:
        if len(items) > 1:
            raise InvalidInput(
                f"give one feature service ({services[0]}) or view:feature references, not both", field="features"
            )
        return None, services[0]
    for item in items:
        view, sep, feature = item.partition(":")
        if not sep or not view or not feature:
            raise InvalidInput(
                f"{item!r} is neither a feature service (features:/NAME) nor a feature reference (view:feature)",
                field="features",
            )
    return items, None


class FeatureEnricher:
    """Fills a request's missing model inputs with online features looked up by its entity keys.

    ``features``: a feature service (``features:/NAME``) or ``view:feature`` references;
    ``missing``: ``"error"`` (refuse an entity with no online value) or ``"null"`` (serve null).
    :meth:`resolve` checks the references against the registry (called when the server starts).
    """

    def __init__(self, features: Sequence[str], *, missing: str = "error", project: str | None = None) -> None:
        self.features = tuple(features)
        self.missing = missing
        self.project = project
        self.entity_keys: list[str] | None = None  # filled by resolve()
        self.columns: list[str] | None = None

    def __repr__(self) -> str:
        return f"FeatureEnricher(features={list(self.features)!r}, missing={self.missing!r})"

    def resolve(self) -> None:
        """Check the references and learn the join keys and feature columns (an empty lookup)."""
        if self.missing not in MISSING:
            raise InvalidInput(f"missing must be one of {', '.join(MISSING)}, got {self.missing!r}", field="missing")
        empty = self._lookup({})
        self.entity_keys = list(empty.entities)
        self.columns = list(empty.features)

    def _lookup(self, entity_rows: dict[str, list[Any]]) -> Any:
        from plinth.features.sdk import get_online_features

        features, service = parse_feature_refs(self.features)
        return get_online_features(features, entity_rows, feature_service=service, project=self.project)

    # --- the request shapes ------------------------------------------------------------------------
    async def enrich(self, data: Any, signature: Signature | None) -> Any:
        """``data`` with the model's missing inputs filled: a v2 infer body (a dict with ``inputs``)
        or the table of the plain endpoint (a DataFrame); anything else is returned unchanged."""
        if self.entity_keys is None:
            await asyncio.to_thread(self.resolve)
        if isinstance(data, dict) and isinstance(data.get("inputs"), list):
            return await self._enrich_body(data, signature)
        if hasattr(data, "columns") and hasattr(data, "assign"):
            return await self._enrich_frame(data, signature)
        return data

    def _wanted(self, present: set[str], signature: Signature | None, model: str = "the model") -> dict[str, str]:
        """Feature column -> v2 datatype of each input to fill ("" where no signature says)."""
        assert self.columns is not None
        if signature is None:
            return {c: "" for c in self.columns if c not in present}
        if isinstance(signature.inputs, TensorSpec):
            raise InvalidInput(
                f"{model} takes one tensor; feature enrichment fills named column inputs", field="features"
            )
        return {
            c.name: to_v2_datatype(c.type) for c in signature.inputs if c.name not in present and c.name in self.columns
        }

    async def _fetch(self, columns: dict[str, list[Any]], wanted: list[str]) -> dict[str, list[Any]]:
        assert self.entity_keys is not None
        absent = [k for k in self.entity_keys if k not in columns]
        if absent:
            raise InvalidInput(
                f"the request needs the entity key {absent[0]!r} to look up {', '.join(wanted)}", field=absent[0]
            )
        found = await asyncio.to_thread(self._lookup, columns)
        if self.missing == "error":
            for col in wanted:
                for i, status in enumerate(found.statuses[col]):
                    if status != "present":
                        key = ", ".join(f"{k}={columns[k][i]!r}" for k in self.entity_keys)
                        why = "older than its view's ttl" if status == "expired" else "none was materialized"
                        raise NotFound(
                            f"no online value of feature {col!r} for {key} ({status}: {why})", field=col, status=status
                        )
        return {col: found.features[col] for col in wanted}

    async def _enrich_body(self, body: dict[str, Any], signature: Signature | None) -> dict[str, Any]:
        inputs = body["inputs"]
        present = {i.get("name") for i in inputs if isinstance(i, dict)}
        wanted = self._wanted(present, signature)  # type: ignore[arg-type]
        if not wanted:
            return body
        columns = {name: values for name, values in (_column(i) for i in inputs) if values is not None}
        values = await self._fetch(columns, list(wanted))
        assert self.entity_keys is not None
        model_inputs = None if signature is None else {c.name for c in signature.inputs}  # type: ignore[union-attr]
        kept = [
            i
            for i in inputs
            if not (model_inputs is not None and i.get("name") in self.entity_keys and i["name"] not in model_inputs)
        ]
        rows = len(next(iter(values.values())))
        added = [
            {"name": col, "shape": [rows], "datatype": datatype or _datatype_of(values[col]), "data": values[col]}
            for col, datatype in wanted.items()
        ]
        return {**body, "inputs": kept + added}

    async def _enrich_frame(self, frame: Any, signature: Signature | None) -> Any:
        wanted = self._wanted({str(c) for c in frame.columns}, signature)
        if not wanted:
            return frame
        columns = {str(c): frame[c].tolist() for c in frame.columns}
        values = await self._fetch(columns, list(wanted))
        return frame.assign(**values)


def _column(item: Any) -> tuple[str, list[Any] | None]:
    """A v2 input as one column of entity rows: (name, values), or no values if it is not 1-D."""
    import numpy as np

    if not isinstance(item, dict) or not isinstance(item.get("data"), list) or not isinstance(item.get("shape"), list):
        return "", None
    shape = item["shape"]
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        return str(item.get("name")), None
    flat = np.asarray(item["data"], dtype=object).ravel().tolist()
    return str(item.get("name")), [v.decode() if isinstance(v, bytes) else v for v in flat]


def _datatype_of(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "BOOL"
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return "FP64"
    return "BYTES"

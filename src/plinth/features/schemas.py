"""I/O models and operations (routes) of the features area."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plinth.core.ops import Operation

Kind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
Action = Literal["create", "update", "unchanged", "remove", "keep"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class DefinitionInfo(BaseModel):
    kind: Kind
    name: str
    version: int
    spec: dict[str, Any]
    owner: str = ""
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @property
    def ref(self) -> str:
        return f"features:/{self.name}" if self.kind != "entity" else self.name


class DefinitionVersionInfo(BaseModel):
    kind: Kind
    name: str
    version: int
    spec: dict[str, Any]
    created_at: datetime
    created_by: str


class PlanChange(BaseModel):
    kind: Kind
    name: str
    action: Action
    from_version: int | None = None
    to_version: int | None = None
    changes: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    changes: list[PlanChange]

    @property
    def has_changes(self) -> bool:
        return any(c.action in {"create", "update", "remove"} for c in self.changes)

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out


class ApplyResult(BaseModel):
    plan: Plan
    applied: list[DefinitionInfo]


class DefinitionsBody(BaseModel):
    objects: list[dict[str, Any]]
    prune: bool = False


class Freshness(BaseModel):
    view: str
    online: bool
    last_write_at: datetime | None = None
    last_write_kind: str | None = None
    materialized_until: datetime | None = None
    max_event_ts: datetime | None = None
    lag_seconds: float | None = None  # now - newest event time in the online store


class Usage(BaseModel):
    services: list[str] = Field(default_factory=list)
    training_sets: list[str] = Field(default_factory=list)
    runs: list[str] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)


class FeatureInfo(BaseModel):
    ref: str  # view:feature
    view: str
    name: str
    dtype: str
    kind: Literal["feature_view", "on_demand_feature_view"]
    view_version: int
    entities: list[str] = Field(default_factory=list)
    join_keys: list[str] = Field(default_factory=list)
    owner: str = ""
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    ttl_seconds: float | None = None
    online: bool = False
    source: str = ""
    freshness: Freshness | None = None
    statistics: dict[str, Any] | None = None
    usage: Usage | None = None


class FeatureViewDetail(BaseModel):
    definition: DefinitionInfo
    features: list[FeatureInfo]
    versions: list[DefinitionVersionInfo]
    freshness: Freshness | None = None
    services: list[str] = Field(default_factory=list)
    writes: list[OnlineWriteInfo] = Field(default_factory=list)


class FeatureServiceDetail(BaseModel):
    definition: DefinitionInfo
    features: list[FeatureInfo]
    versions: list[DefinitionVersionInfo]
    usage: Usage


class OnlineWriteInfo(BaseModel):
    view: str
    view_version: int
    kind: str
    store: str
    start_ts: datetime | None = None
    end_ts: datetime | None = None
    rows_read: int
    entities_written: int
    max_event_ts: datetime | None = None
    source_ref: str = ""
    seconds: float
    created_at: datetime
    created_by: str


class MaterializeBody(BaseModel):
    start: datetime | None = None
    end: datetime
    views: list[str] | None = None


class MaterializeResult(BaseModel):
    writes: list[OnlineWriteInfo]
    seconds: float


class OnlineBody(BaseModel):
    features: list[str] | None = None
    feature_service: str | None = None
    entity_rows: list[dict[str, Any]] | dict[str, list[Any]]
    full_feature_names: bool = False


class OnlineFeatures(BaseModel):
    """Values by entity row: ``entities`` (join keys as given), ``features`` (column -> values),
    ``event_timestamps`` (view -> the event time of its values), ``statuses`` (column ->
    ``present``, ``not_found`` or ``expired``: older than the view's ttl, served as null)."""

    entities: dict[str, list[Any]]
    features: dict[str, list[Any]]
    event_timestamps: dict[str, list[datetime | None]]
    statuses: dict[str, list[str]]

    def to_dict(self) -> dict[str, list[Any]]:
        return {**self.entities, **self.features}

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.to_dict())


class PushResult(BaseModel):
    view: str
    rows: int
    entities_written: int
    offline: str  # what the rows were appended to
    seconds: float


class TrainingSetInfo(BaseModel):
    dataset: str  # datasets:/<name>/<version>
    rows: int
    features: list[str]
    views: list[str]  # features:/<view>/<version>
    sources: list[str]
    feature_service: str | None = None
    run_id: str | None = None
    seconds: float


FeatureViewDetail.model_rebuild()

API = "/api/v1/features"
PLAN = Operation("POST", f"{API}/plan", Plan)
APPLY = Operation("POST", f"{API}/apply", ApplyResult)
LIST_DEFINITIONS = Operation("GET", f"{API}/definitions", list[DefinitionInfo])
LIST_VIEWS = Operation("GET", f"{API}/views", list[DefinitionInfo])
GET_VIEW = Operation("GET", f"{API}/views/{{name}}", FeatureViewDetail)
LIST_SERVICES = Operation("GET", f"{API}/services", list[DefinitionInfo])
GET_SERVICE = Operation("GET", f"{API}/services/{{name}}", FeatureServiceDetail)
GET_ENTITY = Operation("GET", f"{API}/entities/{{name}}", DefinitionInfo)
LIST_FEATURES = Operation("GET", f"{API}/catalog", list[FeatureInfo])
GET_FEATURE = Operation("GET", f"{API}/catalog/{{ref}}", FeatureInfo)
FRESHNESS = Operation("GET", f"{API}/freshness", list[Freshness])
MATERIALIZE = Operation("POST", f"{API}/materialize", MaterializeResult)
MATERIALIZE_INCREMENTAL = Operation("POST", f"{API}/materialize-incremental", MaterializeResult)
ONLINE = Operation("POST", f"{API}/online", OnlineFeatures)
# Bodies that are Arrow IPC streams (entity frames, pushed rows):
PUSH = Operation("PUT", f"{API}/push", PushResult, 201)
TRAINING_SET = Operation("PUT", f"{API}/training-sets", TrainingSetInfo, 201)
HISTORICAL = Operation("POST", f"{API}/historical")

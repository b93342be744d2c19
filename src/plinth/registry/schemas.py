"""Pydantic I/O models and the operations (routes) of the model registry."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from plinth.core.ops import Operation

Stage = Literal["development", "staging", "production", "archived"]
STAGES: tuple[str, ...] = ("development", "staging", "production", "archived")
CARD_FIELDS: tuple[str, ...] = (
    "purpose",
    "intended_use",
    "out_of_scope_use",
    "training_data",
    "evaluation",
    "limitations",
    "ethical_considerations",
    "caveats",
)


class ModelCreate(BaseModel):
    name: str
    description: str = ""
    owner: str | None = None
    tags: dict[str, str] | None = None


class ModelUpdate(BaseModel):
    description: str | None = None
    owner: str | None = None
    tags: dict[str, str] | None = None


class ModelInfo(BaseModel):
    id: str
    project: str
    name: str
    description: str
    owner: str
    tags: dict[str, str]
    created_at: datetime
    created_by: str
    updated_at: datetime
    latest_version: int | None = None
    production_version: int | None = None
    aliases: dict[str, int] = {}
    stages: dict[str, int] = Field(default_factory=dict, description="number of versions per stage")
    pending_approvals: int = 0

    @property
    def uri(self) -> str:
        return f"models:/{self.name}"


class VersionInfo(BaseModel):
    id: str
    name: str
    version: int
    stage: Stage
    source: str
    run_id: str | None
    flavor: str
    manifest_sha256: str
    files: dict[str, dict[str, Any]]
    signature: dict[str, Any] | None
    lineage: dict[str, Any]
    description: str
    tags: dict[str, str]
    aliases: list[str] = []
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    @property
    def artifact_owner(self) -> str:
        """The owner of the version's files in the artifact store."""
        return f"models:/{self.name}/{self.version}"


class ModelDetail(ModelInfo):
    versions: list[VersionInfo] = []
    card: dict[str, str] = {}


class VersionCreate(BaseModel):
    source: str = Field(description="where the model is: runs:/<run_id>/<path> or models:/<name>/<version>")
    description: str = ""
    tags: dict[str, str] | None = None


class VersionUpdate(BaseModel):
    description: str | None = None
    tags: dict[str, str] | None = None


class AliasSet(BaseModel):
    version: int


class StageChange(BaseModel):
    stage: Stage
    comment: str | None = None


class ApprovalCreate(BaseModel):
    name: str
    version: int
    reason: str
    stage: Stage = "production"


class Decision(BaseModel):
    comment: str | None = None


class ApprovalInfo(BaseModel):
    id: str
    project: str
    name: str
    version: int
    to_stage: str
    reason: str
    status: Literal["pending", "approved", "rejected", "cancelled"]
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    comment: str | None
    version_stage: str


class HistoryEvent(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    version: int | None
    summary: dict[str, Any]


class ModelHistory(BaseModel):
    name: str
    at: datetime | None = Field(description="the moment asked about; None: now")
    aliases: dict[str, int] = Field(description="alias -> version at that moment")
    stages: dict[str, str] = Field(description="version -> stage at that moment")
    production: list[int]
    events: list[HistoryEvent] = Field(description="the events up to that moment, oldest first")


class VersionComparison(BaseModel):
    name: str
    versions: list[int]
    stages: dict[str, str]
    flavors: dict[str, str]
    sources: dict[str, str]
    metrics: dict[str, dict[str, float | None]] = Field(description="metric -> version -> value")
    params: dict[str, dict[str, str | None]] = Field(description="param -> version -> value")
    differing_params: list[str]
    signatures: dict[str, str]
    signature_changes: list[str] = Field(description="how each version's inputs differ from the first's")


class ModelCard(BaseModel):
    name: str
    version: int
    ref: str
    stage: str
    generated: dict[str, Any] = Field(description="what the registry knows")
    fields: dict[str, str] = Field(description="what people wrote")


class CardUpdate(BaseModel):
    fields: dict[str, str]
    ref: str | None = None


API = "/api/v1/registry"
MODEL = f"{API}/models/{{name}}"
VERSION = f"{MODEL}/versions/{{version}}"
APPROVAL = f"{API}/approvals/{{request_id}}"
CREATE_MODEL = Operation("POST", f"{API}/models", ModelInfo, 201)
LIST_MODELS = Operation("GET", f"{API}/models", list[ModelInfo])
GET_MODEL = Operation("GET", MODEL, ModelDetail)
UPDATE_MODEL = Operation("PATCH", MODEL, ModelInfo)
REGISTER_VERSION = Operation("POST", f"{MODEL}/versions", VersionInfo, 201)
LIST_VERSIONS = Operation("GET", f"{MODEL}/versions", list[VersionInfo])
GET_VERSION = Operation("GET", VERSION, VersionInfo)
UPDATE_VERSION = Operation("PATCH", VERSION, VersionInfo)
RESOLVE = Operation("GET", f"{API}/resolve", VersionInfo)
SET_ALIAS = Operation("PUT", f"{MODEL}/aliases/{{alias}}", VersionInfo)
DELETE_ALIAS = Operation("DELETE", f"{MODEL}/aliases/{{alias}}", None, 204)
TRANSITION_STAGE = Operation("POST", f"{VERSION}/stage", VersionInfo)
REQUEST_APPROVAL = Operation("POST", f"{API}/approvals", ApprovalInfo, 201)
LIST_APPROVALS = Operation("GET", f"{API}/approvals", list[ApprovalInfo])
APPROVE = Operation("POST", f"{APPROVAL}/approve", ApprovalInfo)
REJECT = Operation("POST", f"{APPROVAL}/reject", ApprovalInfo)
CANCEL_APPROVAL = Operation("POST", f"{APPROVAL}/cancel", ApprovalInfo)
HISTORY = Operation("GET", f"{MODEL}/history", ModelHistory)
COMPARE = Operation("GET", f"{MODEL}/compare", VersionComparison)
GET_CARD = Operation("GET", f"{MODEL}/card", ModelCard)
UPDATE_CARD = Operation("PUT", f"{MODEL}/card", ModelCard)

"""Pydantic I/O models and the operations (routes) of serving deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from plinth.core.ops import Operation

Status = Literal["created", "serving", "stopped", "failed"]
STATUSES: tuple[str, ...] = ("created", "serving", "stopped", "failed")


class TrafficSplit(BaseModel):
    uri: str
    weight: int


class DeploymentCreate(BaseModel):
    name: str
    models: dict[str, int] | list[str] | str
    shadow: str | None = None
    replicas: int = 1
    sticky_key: str | None = None
    description: str = ""


class DeploymentUpdate(BaseModel):
    models: dict[str, int] | list[str] | str | None = None
    shadow: str | None = None
    clear_shadow: bool = False
    sticky_key: str | None = None
    clear_sticky_key: bool = False
    replicas: int | None = None
    status: Status | None = None
    status_message: str | None = None
    description: str | None = None


class DeploymentInfo(BaseModel):
    id: str
    project: str
    name: str
    traffic: list[TrafficSplit]
    shadow: str | None
    sticky_key: str | None = None
    replicas: int
    status: Status
    status_message: str
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime

    @property
    def policy(self) -> str:
        kinds = ["canary" if len(self.traffic) > 1 else "single"]
        if self.sticky_key and len(self.traffic) > 1:
            kinds = [f"sticky A/B by {self.sticky_key}"]
        return "+".join([*kinds, "shadow"] if self.shadow else kinds)


class InferenceLogInfo(BaseModel):
    deployment: str
    location: str


API = "/api/v1/deployments"
DEPLOYMENT = f"{API}/{{name}}"
CREATE = Operation("POST", API, DeploymentInfo, 201)
LIST = Operation("GET", API, list[DeploymentInfo])
GET = Operation("GET", DEPLOYMENT, DeploymentInfo)
UPDATE = Operation("PATCH", DEPLOYMENT, DeploymentInfo)
DELETE = Operation("DELETE", DEPLOYMENT, None, 204)
INFERENCE_LOG = Operation("GET", f"{DEPLOYMENT}/inference-log", InferenceLogInfo)

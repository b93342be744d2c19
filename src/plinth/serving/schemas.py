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
    features: list[str] | str | None = None
    missing_features: str = "error"
    resources: dict[str, dict[str, str | int | float]] | None = None  # {"requests": {"cpu": "500m"}, "limits": {}}


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
    features: list[str] | str | None = None
    clear_features: bool = False
    missing_features: str | None = None
    resources: dict[str, dict[str, str | int | float]] | None = None
    clear_resources: bool = False


class DeploymentInfo(BaseModel):
    id: str
    project: str
    name: str
    traffic: list[TrafficSplit]
    shadow: str | None
    sticky_key: str | None = None
    replicas: int
    features: list[str] | None = None  # filled from the online store by the request's entity keys
    missing_features: str = "error"
    resources: dict[str, dict[str, str]] | None = None  # Kubernetes requests and limits
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


# --- batch inference jobs ------------------------------------------------------------------------
JobState = Literal["queued", "running", "succeeded", "failed"]
JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed")


class BatchJobCreate(BaseModel):
    model: str
    input: str
    output: str
    executor: str = "local"
    batch_size: int = 65_536
    workers: int = 1
    keep_columns: list[str] | str | None = None
    trust: bool = False
    tags: list[str] | None = None


class BatchJobInfo(BaseModel):
    id: str
    project: str
    state: JobState
    stale: bool = False  # queued or running, but its runner stopped reporting
    model: str
    input: str
    output: str
    output_version: str | None
    executor: str
    workers: int
    batch_size: int
    keep_columns: list[str] | str | None = None
    tags: list[str] | None = None
    rows: int
    total_rows: int | None
    error: str
    error_code: str | None
    runner: str
    created_at: datetime
    created_by: str
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime
    seconds: float | None

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")

    @property
    def output_dataset_version(self) -> tuple[str, int] | None:
        """(dataset, version) of the output version, once written."""
        if not self.output_version:
            return None
        name, _, version = self.output_version.removeprefix("datasets:/").rpartition("/")
        return (name, int(version)) if version.isdigit() else None

    @property
    def rows_per_second(self) -> float:
        return round(self.rows / self.seconds, 1) if self.seconds else 0.0


JOBS = "/api/v1/batch-jobs"
JOB = f"{JOBS}/{{id}}"
SUBMIT_JOB = Operation("POST", JOBS, BatchJobInfo, 202)
LIST_JOBS = Operation("GET", JOBS, list[BatchJobInfo])
GET_JOB = Operation("GET", JOB, BatchJobInfo)
CLOSE_STALE_JOBS = Operation("POST", f"{JOBS}/close-stale", list[BatchJobInfo])


# --- streaming workers ---------------------------------------------------------------------------
WorkerState = Literal["running", "stopped", "failed"]
WORKER_STATES: tuple[str, ...] = ("running", "stopped", "failed")
COUNTS: tuple[str, ...] = ("consumed", "acked", "predicted", "dead", "reclaimed", "batches")


class StreamWorkerRegister(BaseModel):
    source: str
    group: str
    consumer: str
    sink: str
    model: str


class StreamWorkerReport(BaseModel):
    counts: dict[str, int]
    state: WorkerState = "running"
    error: str | None = None


class StreamWorkerInfo(BaseModel):
    id: str
    project: str
    source: str
    group: str
    consumer: str
    sink: str
    model: str
    state: WorkerState
    stale: bool = False  # running, but it stopped reporting
    runner: str
    consumed: int
    acked: int
    predicted: int
    dead: int
    reclaimed: int
    batches: int
    error: str
    created_by: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None

    @property
    def in_hand(self) -> int:
        """Entries read and not acknowledged yet."""
        return max(0, self.consumed - self.acked)


WORKERS = "/api/v1/stream-workers"
WORKER = f"{WORKERS}/{{id}}"
REGISTER_WORKER = Operation("POST", WORKERS, StreamWorkerInfo, 201)
REPORT_WORKER = Operation("PATCH", WORKER, StreamWorkerInfo)
LIST_WORKERS = Operation("GET", WORKERS, list[StreamWorkerInfo])
GET_WORKER = Operation("GET", WORKER, StreamWorkerInfo)

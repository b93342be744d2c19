"""I/O models and operations (routes) of the data area."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plinth.core.ops import Operation

Mode = Literal["append", "overwrite"]
OnBadLines = Literal["error", "quarantine"]
OnFailure = Literal["reject", "warn"]
Direction = Literal["upstream", "downstream", "both"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ColumnSchema(BaseModel):
    name: str
    type: str  # the Delta Lake type: long, double, string, timestamp_ntz, struct<...>
    nullable: bool = True


class SchemaChange(BaseModel):
    kind: Literal["added", "dropped", "type_changed", "nullability_changed"]
    column: str
    before: str | None = None
    after: str | None = None
    breaking: bool

    def __str__(self) -> str:
        if self.kind == "added":
            return f"column {self.column!r} added ({self.after})"
        if self.kind == "dropped":
            return f"column {self.column!r} dropped (was {self.before})"
        if self.kind == "type_changed":
            return f"column {self.column!r} changed type from {self.before} to {self.after}"
        return f"column {self.column!r} changed from {self.before} to {self.after}"


class DatasetInfo(_Out):
    id: str
    name: str
    description: str
    location: str
    latest_version: int
    created_at: datetime
    created_by: str
    updated_at: datetime


class VersionInfo(BaseModel):
    dataset: str
    version: int
    ref: str  # datasets:/<name>/<version>
    delta_version: int
    mode: str
    columns: list[ColumnSchema]
    schema_changes: list[SchemaChange] = Field(default_factory=list)
    row_count: int
    rows_written: int
    rows_quarantined: int = 0
    source: str = ""
    tags: list[str] = Field(default_factory=list)
    quality: bool | None = None  # the latest validation's verdict, None if never validated
    has_profile: bool = False
    created_at: datetime
    created_by: str


class DatasetDetail(BaseModel):
    dataset: DatasetInfo
    latest: VersionInfo | None
    tags: dict[str, int]


# --- profiles ---------------------------------------------------------------------------
class HistogramBin(BaseModel):
    low: float
    high: float
    count: int


class CategoryCount(BaseModel):
    value: str | None
    count: int


class ColumnProfile(BaseModel):
    name: str
    type: str
    kind: Literal["numeric", "text", "boolean", "temporal", "other"]
    count: int  # non-null values
    nulls: int
    null_share: float
    distinct: int | None = None  # approximate (HyperLogLog) beyond a few thousand values
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None  # "p05", "p25", "p50", "p75", "p95"
    histogram: list[HistogramBin] | None = None
    top: list[CategoryCount] | None = None


class Profile(BaseModel):
    dataset: str
    version: int
    row_count: int
    columns: list[ColumnProfile]
    computed_at: datetime
    seconds: float


# --- quality ----------------------------------------------------------------------------
ExpectationType = Literal[
    "not_null",
    "unique",
    "between",
    "in_set",
    "matches_regex",
    "row_count_between",
    "freshness",
    "expression",
]


class Expectation(BaseModel):
    """One rule over a dataset version. Build them with :mod:`plinth.data.expect`."""

    model_config = ConfigDict(extra="forbid")

    type: ExpectationType
    column: str | None = None
    columns: list[str] | None = None  # unique over several columns
    min: Any = None
    max: Any = None
    values: list[Any] | None = None
    pattern: str | None = None
    expression: str | None = None
    max_age_seconds: float | None = Field(default=None, gt=0)
    mostly: float = Field(default=1.0, ge=0.0, le=1.0)  # share of rows that must pass
    name: str | None = None

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        target = self.column or (",".join(self.columns) if self.columns else "")
        if self.type == "expression":
            target = self.expression or ""
        return f"{self.type}({target})" if target else self.type


class ExpectationSuite(BaseModel):
    """A named list of expectations; from Python, a dict, or YAML (:meth:`from_yaml`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    expectations: list[Expectation]

    @classmethod
    def from_yaml(cls, text_or_path: str) -> ExpectationSuite:
        from plinth.data.quality import suite_from_yaml

        return suite_from_yaml(text_or_path)


class ExpectationResult(BaseModel):
    expectation: Expectation
    label: str
    success: bool
    observed: Any = None
    failing_rows: int = 0
    failing_share: float = 0.0
    sample: list[dict[str, Any]] = Field(default_factory=list)
    message: str = ""


class ValidationResult(BaseModel):
    id: str | None = None
    dataset: str
    version: int | None  # None while an ingest was rejected before a version existed
    suite: str
    success: bool
    trigger: str
    results: list[ExpectationResult]
    created_at: datetime
    created_by: str

    @property
    def failed(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success]


# --- ingest, diff, lineage --------------------------------------------------------------
class IngestResult(BaseModel):
    version: VersionInfo
    validation: ValidationResult | None = None
    quarantined: int = 0
    seconds: float = 0.0


class DatasetDiff(BaseModel):
    a: str
    b: str
    schema_changes: list[SchemaChange]
    row_count_a: int
    row_count_b: int
    row_count_change: int


class LineageEdgeInfo(_Out):
    src: str
    dst: str
    kind: str
    created_at: datetime
    created_by: str


class LineageGraph(BaseModel):
    ref: str
    direction: str
    nodes: list[str]
    edges: list[LineageEdgeInfo]


class TagBody(BaseModel):
    tag: str
    version: int | None = None  # the latest version when omitted
    force: bool = False


class ValidateBody(BaseModel):
    ref: str
    suite: ExpectationSuite


class LineageBody(BaseModel):
    src: str
    dst: str
    kind: str = "derived"


API = "/api/v1/datasets"
VERSIONS = "/api/v1/dataset-versions"  # routes that take a reference (?ref=datasets:/x@3)
LIST_DATASETS = Operation("GET", API, list[DatasetInfo])
GET_DATASET = Operation("GET", f"{API}/{{name}}", DatasetDetail)
LIST_VERSIONS = Operation("GET", f"{API}/{{name}}/versions", list[VersionInfo])
TAG_VERSION = Operation("POST", f"{API}/{{name}}/tags", VersionInfo, 201)
DELETE_TAG = Operation("DELETE", f"{API}/{{name}}/tags/{{tag}}", None, 204)
QUALITY_RESULTS = Operation("GET", f"{API}/{{name}}/quality", list[ValidationResult])
GET_VERSION = Operation("GET", VERSIONS, VersionInfo)
PROFILE = Operation("POST", f"{VERSIONS}/profile", Profile)
VALIDATE = Operation("POST", f"{VERSIONS}/validate", ValidationResult)
DIFF = Operation("GET", f"{VERSIONS}/diff", DatasetDiff)
LINEAGE = Operation("GET", "/api/v1/lineage", LineageGraph)
RECORD_LINEAGE = Operation("POST", "/api/v1/lineage", LineageEdgeInfo, 201)
# Streaming routes: ingest takes the file's bytes (or an Arrow IPC stream) as the body;
# read and quarantine answer an Arrow IPC stream.
INGEST = Operation("PUT", f"{VERSIONS}/content", IngestResult, 201)
READ = Operation("GET", f"{VERSIONS}/content")
QUARANTINE = Operation("GET", f"{VERSIONS}/quarantine")

"""I/O models and operations (routes) of the tracking area.

Metric values may be NaN or ±inf. JSON has no such numbers, so on the wire they travel
as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (what ``MetricValue``
serialises to, and what it accepts back).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from plinth.artifacts.schemas import ArtifactInfo
from plinth.core.ops import Operation

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_metric_value(value: float) -> float | str:
    """A float as JSON can carry it: non-finite values become their string names."""
    if value - value == 0:  # finite (NaN and ±inf give NaN here)
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_metric_value(value: float | str) -> float:
    return _NON_FINITE[value] if isinstance(value, str) else value


MetricValue = Annotated[float, PlainSerializer(encode_metric_value, when_used="json")]
RunStatus = Literal["running", "finished", "failed", "killed"]
EndStatus = Literal["finished", "failed", "killed"]


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ExperimentCreate(BaseModel):
    name: str
    description: str = ""


class ExperimentInfo(_Out):
    id: str
    project: str
    name: str
    description: str
    created_at: datetime
    created_by: str
    run_count: int = 0
    last_run_at: datetime | None = None


class RunInfo(_Out):
    id: str
    project: str
    experiment_id: str
    experiment: str
    name: str
    status: RunStatus
    parent_id: str | None
    start_time: datetime
    end_time: datetime | None
    created_by: str
    error: str | None = None
    deleted: bool = False

    @property
    def uri(self) -> str:
        return f"runs:/{self.id}"


class LatestMetricInfo(BaseModel):
    value: MetricValue
    step: int
    timestamp: int


class RunDetail(RunInfo):
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    metrics: dict[str, LatestMetricInfo] = {}


class RunStart(BaseModel):
    experiment: str | None = None
    name: str | None = None
    tags: dict[str, str] | None = None
    parent_id: str | None = None


class RunEnd(BaseModel):
    status: EndStatus = "finished"
    error: str | None = None


# A metric point on the wire: [key, value, step, timestamp_ms]; step and timestamp may be null.
MetricRow = tuple[str, MetricValue, int | None, int | None]


class LogBatch(BaseModel):
    metrics: list[MetricRow] | None = Field(default=None, description="[key, value, step, timestamp_ms] rows")
    params: dict[str, Any] | None = None
    tags: dict[str, Any] | None = None


class BatchResult(BaseModel):
    metrics: int = 0
    params: int = 0
    tags: int = 0


class MetricHistory(BaseModel):
    """One metric's points of one run, as columns (cheap to chart and to send)."""

    run_id: str
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[MetricValue]

    def __len__(self) -> int:
        return len(self.steps)


class RunComparison(BaseModel):
    runs: list[RunInfo]
    params: dict[str, dict[str, str | None]]  # key -> run id -> value
    params_differ: list[str]
    metrics: dict[str, dict[str, MetricValue | None]]  # key -> run id -> latest value


class SearchRequest(BaseModel):
    experiments: list[str] | None = None
    filter: str | None = None
    order_by: list[str] | None = None
    max_results: int = Field(default=1000, ge=1, le=50_000)
    page_token: str | None = None
    include_deleted: bool = False


_UTC_TIMES = "datetime64[us, UTC]"
_STR_DTYPE: Any = False  # unknown yet; None: text columns stay object arrays


def _text_column(values: list[Any]) -> Any:
    """A text column as pandas would infer it from strings (and None), built directly.

    With pandas' Arrow-backed ``str`` dtype (pandas 3's default) the array is made from one
    Arrow array, several times cheaper than pandas inferring it column by column in the
    DataFrame constructor; anything else (other pandas, values that are not all strings or
    None, a column of nothing but None) goes the constructor's way, with the same result.
    """
    import numpy as np

    global _STR_DTYPE
    if _STR_DTYPE is False:
        _STR_DTYPE = _arrow_str_dtype()
    if _STR_DTYPE is not None and any(v is not None for v in values):  # all None stays object
        import pandas as pd
        import pyarrow as pa

        try:
            return pd.arrays.ArrowStringArray(pa.array(values, type=pa.large_string()), dtype=_STR_DTYPE)
        except (pa.ArrowException, TypeError, ValueError):
            pass
    return np.array(values, dtype=object)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_NAT = -(2**63)  # NaT as datetime64's int64


def _time_column(values: list[Any]) -> Any:
    """A ``datetime64[us, UTC]`` column from aware datetimes (and None), built directly.

    The microseconds since the epoch go into one int64 array that becomes the column as it
    is: the public constructors look at each object again and cost three times as much when
    the CPU caches are cold (a search right after other work). Naive datetimes, or a pandas
    without that constructor, go the public way, with the same result."""
    import numpy as np
    import pandas as pd

    try:
        micros = np.array([_NAT if v is None else (v - _EPOCH) // _ONE_US for v in values], dtype=np.int64)
        return pd.arrays.DatetimeArray._simple_new(micros.view("datetime64[us]"), dtype=pd.DatetimeTZDtype("us", UTC))
    except (TypeError, AttributeError, ValueError):  # naive minus aware is a TypeError
        return pd.DatetimeIndex(values, dtype=_UTC_TIMES)


def _arrow_str_dtype() -> Any:
    """pandas' inferred dtype for strings when it is the Arrow-backed ``str`` that
    ``ArrowStringArray`` makes from a ``large_string`` array; else None."""
    import numpy as np
    import pandas as pd

    try:
        inferred = pd.Series(np.array(["a", None], dtype=object)).dtype
        if not isinstance(inferred, pd.StringDtype) or inferred.storage != "pyarrow":
            return None
        import pyarrow as pa

        made = pd.arrays.ArrowStringArray(pa.array(["a", None], type=pa.large_string()), dtype=inferred)
        probe = pd.Series(made)
        if probe.dtype != inferred or not probe.equals(pd.Series(np.array(["a", None], dtype=object))):
            return None
        return inferred
    except (ImportError, TypeError, ValueError, AttributeError):
        return None


class RunTable(BaseModel):
    """Runs as columns: attributes, then latest metrics, params and tags by key."""

    run_id: list[str]
    experiment_id: list[str]
    name: list[str]
    status: list[str]
    parent_id: list[str | None]
    start_time: list[datetime]
    end_time: list[datetime | None]
    created_by: list[str]
    metrics: dict[str, list[MetricValue | None]] = {}
    params: dict[str, list[str | None]] = {}
    tags: dict[str, list[str | None]] = {}
    next_page_token: str | None = None

    def __len__(self) -> int:
        return len(self.run_id)

    def rows(self) -> Iterator[dict[str, Any]]:
        """One dict per run (for pages and the CLI)."""
        for i, run_id in enumerate(self.run_id):
            yield {
                "run_id": run_id,
                "experiment_id": self.experiment_id[i],
                "name": self.name[i],
                "status": self.status[i],
                "parent_id": self.parent_id[i],
                "start_time": self.start_time[i],
                "end_time": self.end_time[i],
                "created_by": self.created_by[i],
                "metrics": {k: v[i] for k, v in self.metrics.items() if v[i] is not None},
                "params": {k: v[i] for k, v in self.params.items() if v[i] is not None},
                "tags": {k: v[i] for k, v in self.tags.items() if v[i] is not None},
            }

    def to_pandas(self) -> Any:
        """A DataFrame; columns are built as typed arrays (pandas infers nothing, which is fast)."""
        import numpy as np

        text = _text_column
        # one dtype whatever the tzinfo objects (pydantic's UTC on the remote side) or all missing
        times = _time_column
        data: dict[str, Any] = {
            "run_id": text(self.run_id),
            "experiment_id": text(self.experiment_id),
            "name": text(self.name),
            "status": text(self.status),
            "parent_id": text(self.parent_id),
            "start_time": times(self.start_time),
            "end_time": times(self.end_time),
            "created_by": text(self.created_by),
        }
        for key, numbers in sorted(self.metrics.items()):
            data[f"metrics.{key}"] = np.array([math.nan if v is None else v for v in numbers], dtype="float64")
        for key, col in sorted(self.params.items()):
            data[f"params.{key}"] = text(col)
        for key, col in sorted(self.tags.items()):
            data[f"tags.{key}"] = text(col)
        return _frame(data, len(self.run_id))


def _frame(data: dict[str, Any], rows: int) -> Any:
    """``pd.DataFrame(data, copy=False)`` for columns that are already typed arrays of ``rows``
    values: handed to pandas as they are (``DataFrame._from_arrays`` without its checks), about
    half the constructor's time, which looks at every array again. A pandas without that method
    gets the constructor."""
    import pandas as pd

    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is not None and all(len(a) == rows for a in data.values()):
        try:
            return from_arrays(list(data.values()), _columns(tuple(data)), pd.RangeIndex(rows), verify_integrity=False)
        except (TypeError, ValueError):
            pass
    return pd.DataFrame(data, copy=False)


@functools.lru_cache(maxsize=256)
def _columns(names: tuple[str, ...]) -> Any:
    """The column index of a search's frame, built once per set of names (the same searches
    give the same columns)."""
    import pandas as pd

    return pd.Index(names)


API = "/api/v1"
CREATE_EXPERIMENT = Operation("POST", f"{API}/experiments", ExperimentInfo, 201)
SET_EXPERIMENT = Operation("PUT", f"{API}/experiments/{{name}}", ExperimentInfo)
LIST_EXPERIMENTS = Operation("GET", f"{API}/experiments", list[ExperimentInfo])
GET_EXPERIMENT = Operation("GET", f"{API}/experiments/{{name}}", ExperimentInfo)
START_RUN = Operation("POST", f"{API}/runs", RunInfo, 201)
SEARCH_RUNS = Operation("POST", f"{API}/runs/search", RunTable)
COMPARE_RUNS = Operation("GET", f"{API}/runs/compare", RunComparison)
GET_RUN = Operation("GET", f"{API}/runs/{{run_id}}", RunDetail)
END_RUN = Operation("POST", f"{API}/runs/{{run_id}}/end", RunInfo)
DELETE_RUN = Operation("DELETE", f"{API}/runs/{{run_id}}", None, 204)
LOG_BATCH = Operation("POST", f"{API}/runs/{{run_id}}/batch", BatchResult)
METRIC_HISTORY = Operation("GET", f"{API}/runs/{{run_id}}/metrics/{{key:path}}", MetricHistory)
# Streaming: the body is the artifact's bytes; run_id and name go in the query string.
PUT_RUN_ARTIFACT = Operation("PUT", f"{API}/run-artifacts", ArtifactInfo, 201)

"""Ingest + profile of a large CSV, side by side with pandas (``read_csv`` + ``describe`` +
``to_parquet``), each in its own process so that peak memory (max RSS) is its own; then a
10-expectation suite on the same data, Plinth (DuckDB over the Delta table) against Great
Expectations with pandas in its own virtual environment (when that environment builds).

    PLINTH_BENCH_DATA_ROWS=10000000 python -m benchmarks.run data

Rows default to 2,000,000 (20 columns); the CSV is generated once per row count in
``$PLINTH_BENCH_CACHE`` (default: the temp folder). Every figure comes with the process's
CPU seconds beside its wall time, and the load average when it was taken: on a shared
machine the CPU seconds are the steadier comparison. ``PLINTH_BENCH_DATA_REPEAT``
(default 3): validations per side, the fastest counts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CACHE = Path(os.environ.get("PLINTH_BENCH_CACHE", Path(tempfile.gettempdir()) / "plinth-bench-data"))
ROWS = int(os.environ.get("PLINTH_BENCH_DATA_ROWS", "2000000"))
# Each side validates this many times in its process; the fastest run counts for both
# (the machine is shared: the minimum is the least disturbed figure), all are printed.
REPEAT = int(os.environ.get("PLINTH_BENCH_DATA_REPEAT", "3"))
SUITE = [
    {"type": "not_null", "column": "id"},
    {"type": "unique", "column": "id"},
    {"type": "between", "column": "f0", "min": -10, "max": 10},
    {"type": "between", "column": "i0", "min": 0, "max": 1000},
    {"type": "in_set", "column": "s0", "values": ["alpha", "beta", "gamma", "delta", "epsilon"]},
    {"type": "matches_regex", "column": "s3", "pattern": "^code-[0-9]+$"},
    {"type": "not_null", "column": "f1", "mostly": 0.95},
    {"type": "row_count_between", "min": 1},
    {"type": "between", "column": "f2", "min": -10, "max": 10, "mostly": 0.99},
    {"type": "not_null", "column": "ts"},
]


def make_csv(rows: int) -> Path:
    """20 columns: an id, 8 floats (some nulls), 5 ints, 4 strings, a timestamp, a bool."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv

    path = CACHE / f"data-{rows}.csv"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    rng = np.random.default_rng(42)
    chunk = 500_000
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
    with pcsv.CSVWriter(tmp, _schema()) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            cols: dict[str, Any] = {"id": np.arange(start, start + n)}
            for i in range(8):
                values = rng.normal(0, 3, n)
                mask = rng.random(n) < 0.02
                cols[f"f{i}"] = pa.array(values, mask=mask)
            for i in range(5):
                cols[f"i{i}"] = rng.integers(0, 1000, n)
            cols["s0"] = words[rng.integers(0, 5, n)]
            cols["s1"] = np.char.add("city-", rng.integers(0, 300, n).astype(str))
            cols["s2"] = np.char.add("user-", rng.integers(0, 1_000_000, n).astype(str))
            cols["s3"] = np.char.add("code-", rng.integers(0, 50, n).astype(str))
            seconds = rng.integers(0, 86400 * 300, n).astype("timedelta64[s]")
            cols["ts"] = (np.datetime64("2026-01-01T00:00:00") + seconds).astype("datetime64[us]")
            cols["flag"] = rng.random(n) < 0.5
            writer.write_table(pa.table(cols, schema=_schema()))
    tmp.replace(path)
    return path


def _schema() -> Any:
    import pyarrow as pa

    fields = [("id", pa.int64())]
    fields += [(f"f{i}", pa.float64()) for i in range(8)]
    fields += [(f"i{i}", pa.int64()) for i in range(5)]
    fields += [(f"s{i}", pa.string()) for i in range(4)]
    fields += [("ts", pa.timestamp("us")), ("flag", pa.bool_())]
    return pa.schema(fields)


# Imports and the metadata schema are set up before the clock starts, as pandas' import is.
PLINTH_INGEST = """
import json, resource, sys, time
import duckdb, deltalake, pyarrow.dataset
import plinth
plinth.data.list_datasets()
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
c, t = cpu(), time.perf_counter()
r = plinth.data.ingest("bench", sys.argv[1])
elapsed, used = time.perf_counter() - t, cpu() - c
assert r.version.has_profile
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "cpu_s": used, "rows": r.version.row_count, "peak_mb": peak}))
"""

PANDAS_INGEST = """
import json, resource, sys, time
import pandas as pd
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
c, t = cpu(), time.perf_counter()
df = pd.read_csv(sys.argv[1], parse_dates=["ts"])
df.describe(include="all")
df.to_parquet(sys.argv[2])
elapsed, used = time.perf_counter() - t, cpu() - c
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "cpu_s": used, "rows": len(df), "peak_mb": peak}))
"""

PLINTH_VALIDATE = """
import json, resource, sys, time
import duckdb, deltalake, pyarrow.dataset
import plinth
plinth.data.list_datasets()
suite = json.loads(sys.argv[1])
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
runs = []
for _ in range(int(sys.argv[2])):
    c, t = cpu(), time.perf_counter()
    r = plinth.data.validate("bench", suite)
    runs.append((time.perf_counter() - t, cpu() - c))
elapsed, used = min(runs)
print(json.dumps({"seconds": elapsed, "cpu_s": used, "runs": runs, "success": r.success,
                  "failed": [x.label for x in r.failed],
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# Great Expectations 1.x, pandas engine, the same ten rules on the same data (from Parquet,
# which is how a pipeline would hand it over; loading is timed separately).
GE_VALIDATE = """
import json, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import pandas as pd
import great_expectations as gx
import great_expectations.expectations as gxe
t0 = time.perf_counter()
df = pd.read_parquet(sys.argv[1])
load = time.perf_counter() - t0
ctx = gx.get_context(mode="ephemeral")
asset = ctx.data_sources.add_pandas("p").add_dataframe_asset("a")
batch = asset.add_batch_definition_whole_dataframe("b").get_batch(batch_parameters={"dataframe": df})
rules = [
    gxe.ExpectColumnValuesToNotBeNull(column="id"),
    gxe.ExpectColumnValuesToBeUnique(column="id"),
    gxe.ExpectColumnValuesToBeBetween(column="f0", min_value=-10, max_value=10),
    gxe.ExpectColumnValuesToBeBetween(column="i0", min_value=0, max_value=1000),
    gxe.ExpectColumnValuesToBeInSet(column="s0", value_set=["alpha", "beta", "gamma", "delta", "epsilon"]),
    gxe.ExpectColumnValuesToMatchRegex(column="s3", regex="^code-[0-9]+$"),
    gxe.ExpectColumnValuesToNotBeNull(column="f1", mostly=0.95),
    gxe.ExpectTableRowCountToBeBetween(min_value=1),
    gxe.ExpectColumnValuesToBeBetween(column="f2", min_value=-10, max_value=10, mostly=0.99),
    gxe.ExpectColumnValuesToNotBeNull(column="ts"),
]
suite = ctx.suites.add(gx.ExpectationSuite(name="bench", expectations=rules))
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
runs = []
for _ in range(int(sys.argv[2])):
    c, t = cpu(), time.perf_counter()
    result = batch.validate(suite)
    runs.append((time.perf_counter() - t, cpu() - c))
elapsed, used = min(runs)
failed = [r.expectation_config.type for r in result.results if not r.success]
print(json.dumps({"seconds": elapsed, "cpu_s": used, "runs": runs, "load_seconds": load,
                  "success": result.success, "failed": failed,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _run(python: str, script: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [python, "-c", textwrap.dedent(script), *args], capture_output=True, text=True, env=env, timeout=3600
    )
    if out.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _load() -> str:
    """The 1, 5 and 15 minute load averages, to read each figure with (2-core machine)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(emit: Callable[..., Any]) -> None:
    csv = make_csv(ROWS)
    size_mb = csv.stat().st_size / 2**20
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
        env["PLINTH_HOME"] = str(Path(tmp) / "home")
        plinth = _run(sys.executable, PLINTH_INGEST, str(csv), env=env)
        pandas = _run(sys.executable, PANDAS_INGEST, str(csv), str(Path(tmp) / "pandas.parquet"))
        emit(
            workload="ingest+profile CSV",
            rows=plinth["rows"],
            columns=20,
            csv_mb=round(size_mb),
            plinth_s=round(plinth["seconds"], 2),
            pandas_s=round(pandas["seconds"], 2),
            ratio=round(pandas["seconds"] / plinth["seconds"], 2),
            plinth_cpu_s=round(plinth["cpu_s"], 2),
            pandas_cpu_s=round(pandas["cpu_s"], 2),
            cpu_ratio=round(pandas["cpu_s"] / plinth["cpu_s"], 2),
            plinth_peak_mb=round(plinth["peak_mb"]),
            pandas_peak_mb=round(pandas["peak_mb"]),
            load_average=_load(),
        )
        mine = _run(sys.executable, PLINTH_VALIDATE, json.dumps(SUITE), str(REPEAT), env=env)
        fields: dict[str, Any] = {
            "workload": "validate 10 expectations",
            "rows": plinth["rows"],
            "repeats": REPEAT,
            "plinth_s": round(mine["seconds"], 2),
            "plinth_cpu_s": round(mine["cpu_s"], 2),
            "plinth_runs_s": [round(w, 2) for w, _ in mine["runs"]],
            "plinth_peak_mb": round(mine["peak_mb"]),
            "plinth_failed": mine["failed"],
        }
        try:
            from benchmarks.anchors import anchor_python

            ge_python = str(anchor_python("great_expectations"))
        except Exception as exc:  # the anchor's environment did not build here
            emit(**fields, great_expectations="not run: " + str(exc).splitlines()[0][:200])
            return
        ge = _run(ge_python, GE_VALIDATE, str(Path(tmp) / "pandas.parquet"), str(REPEAT))
        emit(
            **fields,
            great_expectations_s=round(ge["seconds"], 2),
            great_expectations_cpu_s=round(ge["cpu_s"], 2),
            great_expectations_runs_s=[round(w, 2) for w, _ in ge["runs"]],
            great_expectations_load_s=round(ge["load_seconds"], 2),
            great_expectations_peak_mb=round(ge["peak_mb"]),
            great_expectations_failed=ge["failed"],
            ratio=round(ge["seconds"] / mine["seconds"], 2),
            cpu_ratio=round(ge["cpu_s"] / mine["cpu_s"], 2),
            load_average=_load(),
        )

"""On-demand feature views run in the process that loaded their function.

The registry stores an on-demand view's function as text (for people) and its sha256,
never as code to execute. ``apply`` or ``load_repo`` in a process registers the function
object here; retrieval (offline and online alike) looks it up by view name and checks the
hash against the applied version, so the function that runs is the one that was applied.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from plinth.core.errors import InvalidInput
from plinth.features.definitions import OnDemandFeatureView, _function_spec
from plinth.features.service import OdfvPlan

__all__ = ["register", "registered", "run_odfv"]

_functions: dict[tuple[str, str], OnDemandFeatureView] = {}
_lock = threading.Lock()


def register(obj: OnDemandFeatureView) -> None:
    """Make ``obj``'s function available to retrievals in this process (any project)."""
    with _lock:
        _functions[(obj.name, _function_spec(obj.udf)["sha256"])] = obj


def registered(name: str, sha256: str) -> OnDemandFeatureView | None:
    with _lock:
        return _functions.get((name, sha256))


def run_odfv(plan: OdfvPlan, inputs: pa.Table) -> pa.Table:
    """Run the view's function on ``inputs``; returns its features cast to their dtypes."""
    from plinth.features.definitions import DTYPES

    sha = plan.spec["function"]["sha256"]
    obj = registered(plan.name, sha)
    if obj is None:
        raise InvalidInput(
            f"on-demand feature view {plan.name!r} runs in the process that loaded its function, and this process "
            "has not (or has another version of it): call plinth.features.load_repo(PATH) or apply it here first, "
            "or serve it with `plinth features serve --repo PATH`",
            field="features",
            view=plan.name,
        )
    if plan.spec.get("mode", "pandas") == "pandas":
        result: Any = obj.udf(inputs.to_pandas())
        try:
            out = pa.Table.from_pandas(result, preserve_index=False)
        except Exception as exc:
            raise InvalidInput(
                f"on-demand feature view {plan.name!r} returned {type(result).__name__}, not a DataFrame ({exc})"
            ) from None
    else:
        out = obj.udf(inputs)
        if not isinstance(out, pa.Table):
            raise InvalidInput(
                f"on-demand feature view {plan.name!r} returned {type(out).__name__}, not an Arrow table"
            )
    if out.num_rows != inputs.num_rows:
        raise InvalidInput(
            f"on-demand feature view {plan.name!r} returned {out.num_rows} rows for {inputs.num_rows}; "
            "it must return one per row"
        )
    arrays = {}
    for field in plan.spec["schema"]:
        name = field["name"]
        if name not in out.column_names:
            raise InvalidInput(f"on-demand feature view {plan.name!r} did not return its feature {name!r}")
        target = (
            pa.type_for_alias(DTYPES[field["dtype"]]) if field["dtype"] != "timestamp" else pa.timestamp("us", tz="UTC")
        )
        try:
            arrays[name] = out.column(name).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInput(
                f"on-demand feature view {plan.name!r}: {name!r} is not {field['dtype']} ({exc})"
            ) from None
    return pa.table(arrays)

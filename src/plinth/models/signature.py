"""Model signatures: what a model takes and gives, inferred from an example, checked on predict.

A signature's inputs are either **columns** (tabular data: a name and a type per column,
from a DataFrame, an Arrow table or a list of dicts) or a **tensor** (a NumPy dtype and a
shape whose ``-1`` dimensions take any size). :func:`prepare_input` turns what a caller
passes to ``predict()`` into exactly what the model was logged with, or raises
:class:`~plinth.core.errors.InvalidInput` naming the column and the type it expected.

Casts that lose nothing are made silently (int32 → int64, int → float, float64 → float32
for a float32 model, whole floats → int); anything else is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.core.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ColumnSpec", "Signature", "TensorSpec", "infer_signature", "infer_spec", "prepare_input"]

INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_TYPES = ("float16", "float32", "float64")
TYPES = frozenset({"bool", *INT_TYPES, *FLOAT_TYPES, "string", "binary", "datetime", "any"})
MAX_COLUMNS = 10_000


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class TensorSpec:
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    def describe(self) -> str:
        return f"{self.dtype} tensor of shape ({', '.join(str(d) for d in self.shape)})"


Spec = list[ColumnSpec] | TensorSpec


def _spec_to_dict(spec: Spec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if isinstance(spec, TensorSpec):
        return {"kind": "tensor", **spec.to_dict()}
    return {"kind": "columns", "columns": [c.to_dict() for c in spec]}


def _spec_from_dict(value: Any, what: str) -> Spec | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("kind") not in {"columns", "tensor"}:
        raise InvalidInput(f"signature {what} must be {{kind: columns|tensor, ...}}", field=f"signature.{what}")
    if value["kind"] == "tensor":
        dtype, shape = value.get("dtype"), value.get("shape")
        if not isinstance(dtype, str) or not isinstance(shape, list) or not all(isinstance(d, int) for d in shape):
            raise InvalidInput(
                f"signature {what}: a tensor needs a dtype and a list of ints as shape", field=f"signature.{what}"
            )
        return TensorSpec(_check_type(dtype, what), tuple(shape))
    columns = value.get("columns")
    if not isinstance(columns, list) or not columns:
        raise InvalidInput(f"signature {what}: columns must be a non-empty list", field=f"signature.{what}")
    specs = []
    for col in columns:
        if not isinstance(col, dict) or not isinstance(col.get("name"), str) or not isinstance(col.get("type"), str):
            raise InvalidInput(f"signature {what}: each column needs a name and a type", field=f"signature.{what}")
        specs.append(ColumnSpec(col["name"], _check_type(col["type"], what)))
    if len({c.name for c in specs}) != len(specs):
        raise InvalidInput(f"signature {what}: column names must be unique", field=f"signature.{what}")
    return specs


def _check_type(name: str, what: str) -> str:
    if name not in TYPES:
        raise InvalidInput(
            f"signature {what}: type {name!r} is not one of {', '.join(sorted(TYPES))}", field=f"signature.{what}"
        )
    return name


@dataclass(frozen=True)
class Signature:
    """The inputs a model takes and (when known) the outputs it gives."""

    inputs: list[ColumnSpec] | TensorSpec
    outputs: list[ColumnSpec] | TensorSpec | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": _spec_to_dict(self.inputs), "outputs": _spec_to_dict(self.outputs)}

    @classmethod
    def from_dict(cls, value: Any) -> Signature:
        if isinstance(value, Signature):
            return value
        if not isinstance(value, dict) or "inputs" not in value:
            raise InvalidInput("a signature is {inputs: ..., outputs: ...}", field="signature")
        inputs = _spec_from_dict(value["inputs"], "inputs")
        if inputs is None:
            raise InvalidInput("a signature needs inputs", field="signature.inputs")
        return cls(inputs, _spec_from_dict(value.get("outputs"), "outputs"))

    @property
    def is_columns(self) -> bool:
        return not isinstance(self.inputs, TensorSpec)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.inputs] if isinstance(self.inputs, list) else []

    def describe(self) -> str:
        if isinstance(self.inputs, TensorSpec):
            return self.inputs.describe()
        return ", ".join(f"{c.name}: {c.type}" for c in self.inputs)


# --- turning what callers pass into a frame or an array ---------------------------------------
def _is_arrow(data: Any) -> bool:
    mod = type(data).__module__
    return mod.startswith("pyarrow") and hasattr(data, "schema")


def _is_polars(data: Any) -> bool:
    return type(data).__module__.startswith("polars") and hasattr(data, "to_arrow")


def as_frame_or_array(data: Any) -> pd.DataFrame | np.ndarray:
    """A DataFrame for tabular inputs, a NumPy array for tensors; InvalidInput otherwise."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame(name=data.name if data.name is not None else 0)
    if _is_polars(data):
        data = data.to_arrow()
    if _is_arrow(data):
        return data.to_pandas()
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, dict):
        if all(isinstance(v, list | tuple | np.ndarray) for v in data.values()):
            return pd.DataFrame(data)
        return pd.DataFrame([data])
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidInput("the input is empty: give at least one row", field="input")
        if all(isinstance(row, dict) for row in data):
            return pd.DataFrame(list(data))
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"the input is not a rectangular array: {exc}", field="input") from None
    raise InvalidInput(
        f"cannot predict on a {type(data).__name__}: give a pandas DataFrame, an Arrow table, "
        "a NumPy array or a list of dicts",
        field="input",
    )


def column_type(series: pd.Series) -> str:
    """The signature type of a pandas column."""
    import pandas as pd
    from pandas.api import types as pt

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return column_type(pd.Series(dtype.categories))
    if pt.is_bool_dtype(dtype):
        return "bool"
    if pt.is_integer_dtype(dtype):
        return str(getattr(dtype, "numpy_dtype", dtype)).lower()
    if pt.is_float_dtype(dtype):
        return str(getattr(dtype, "numpy_dtype", dtype)).lower()
    if pt.is_datetime64_any_dtype(dtype):
        return "datetime"
    inferred = pt.infer_dtype(series, skipna=True)
    return {
        "string": "string",
        "bytes": "binary",
        "boolean": "bool",
        "integer": "int64",
        "floating": "float64",
        "mixed-integer-float": "float64",
        "datetime": "datetime",
        "datetime64": "datetime",
        "empty": "any",
    }.get(inferred, "any")


def _tensor_dtype(array: np.ndarray) -> str:
    kind = array.dtype.kind
    if kind in "US":
        return "string"
    if kind == "O":
        return "any"
    if kind == "M":
        return "datetime"
    return str(array.dtype)


def infer_spec(data: Any) -> Spec:
    """The spec of an example: columns for tabular data, a tensor for an array."""
    value = as_frame_or_array(data)
    import numpy as np

    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            raise InvalidInput("an example must have at least one dimension", field="input_example")
        return TensorSpec(_tensor_dtype(value), (-1, *value.shape[1:]))
    if len(value.columns) > MAX_COLUMNS:
        raise InvalidInput(f"at most {MAX_COLUMNS} columns", field="input_example")
    return [ColumnSpec(str(name), column_type(value[name])) for name in value.columns]


def infer_signature(model_input: Any, model_output: Any = None) -> Signature:
    """A signature from an example input (and, if given, the model's output on it).

    >>> import pandas as pd
    >>> infer_signature(pd.DataFrame({"age": [31], "plan": ["pro"]})).describe()
    'age: int64, plan: string'
    """
    outputs = infer_spec(model_output) if model_output is not None else None
    return Signature(infer_spec(model_input), outputs)


# --- checking an input against the signature ------------------------------------------------
def _kind(type_: str) -> str:
    if type_ in INT_TYPES:
        return "int"
    if type_ in FLOAT_TYPES:
        return "float"
    return type_


def _fits_int(series: pd.Series, target: str) -> bool:
    import numpy as np

    info = np.iinfo(np.dtype(target))
    if series.empty:
        return True
    lo, hi = series.min(), series.max()
    return bool(info.min <= lo and hi <= info.max)


def _coerce_column(name: str, series: pd.Series, expected: str) -> pd.Series:
    """The column in the expected type, or InvalidInput naming it and the type expected."""
    import numpy as np

    actual = column_type(series)
    if expected == "any" or actual == expected:
        return series

    def refuse(detail: str = "") -> InvalidInput:
        return InvalidInput(
            f"column {name!r} has type {actual}, expected {expected}{detail}",
            field=name,
            expected=expected,
            actual=actual,
        )

    want, have = _kind(expected), _kind(actual)
    if series.isna().any() and want in {"int", "bool"}:
        raise InvalidInput(
            f"column {name!r} has missing values; expected {expected} without missing values",
            field=name,
            expected=expected,
            actual=actual,
        )
    if want == "float" and have in {"int", "float"}:
        return series.astype(expected)
    if want == "int" and have == "int":
        if _fits_int(series, expected):
            return series.astype(expected)
        raise refuse(" (values out of range)")
    if want == "int" and have == "float":
        values = series.to_numpy(dtype="float64")
        if np.all(np.isfinite(values)) and np.all(values == np.round(values)) and _fits_int(series, expected):
            return series.astype(expected)
        raise refuse(" (values are not whole numbers)")
    if want == "datetime" and actual == "any" and series.isna().all():
        return series
    raise refuse()


def _prepare_columns(value: pd.DataFrame | np.ndarray, columns: list[ColumnSpec]) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.ndarray):
        if value.ndim == 1 and len(columns) == 1:
            value = value.reshape(-1, 1)
        if value.ndim != 2 or value.shape[1] != len(columns):
            raise InvalidInput(
                f"an array of shape {value.shape} does not fit the model's {len(columns)} columns "
                f"({', '.join(c.name for c in columns)}); pass a DataFrame or a list of dicts",
                field="input",
            )
        value = pd.DataFrame({c.name: value[:, i] for i, c in enumerate(columns)})
        value = value.infer_objects()
    present = {str(c): c for c in value.columns}
    if list(present) == [spec.name for spec in columns] and all(
        isinstance(dtype, np.dtype) and dtype.kind in "fiu" and spec.type in {"any", dtype.name}
        for dtype, spec in zip(value.dtypes.tolist(), columns, strict=True)
    ):  # plain numeric columns, in order, each of its type already (a served batch): as it came
        return value
    out = {}
    for spec in columns:
        if spec.name not in present:
            raise InvalidInput(
                f"input is missing column {spec.name!r} (expected {spec.type})",
                field=spec.name,
                expected=spec.type,
            )
        out[spec.name] = _coerce_column(spec.name, value[present[spec.name]], spec.type)
    return pd.DataFrame(out, index=value.index)


def _prepare_tensor(value: pd.DataFrame | np.ndarray, spec: TensorSpec) -> np.ndarray:
    import numpy as np

    array = value.to_numpy() if not isinstance(value, np.ndarray) else value
    if array.ndim != len(spec.shape) or any(
        want != -1 and have != want for have, want in zip(array.shape, spec.shape, strict=False)
    ):
        raise InvalidInput(
            f"input has shape {tuple(array.shape)}, expected {tuple(spec.shape)} (-1: any size)",
            field="input",
            expected=spec.describe(),
        )
    actual = _tensor_dtype(array)
    if spec.dtype in {"any", actual}:
        return array
    want, have = _kind(spec.dtype), _kind(actual)
    if want in {"float", "int"} and have in {"float", "int"}:
        target = np.dtype(spec.dtype)
        if want == "float" or (have == "int" and np.can_cast(array.dtype, target, "safe")):
            return array.astype(target)
        if have == "float" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return array.astype(target)
    if spec.dtype == "string" and array.dtype.kind in "OU":
        return array
    raise InvalidInput(
        f"input has dtype {actual}, expected {spec.dtype}",
        field="input",
        expected=spec.dtype,
        actual=actual,
    )


def prepare_input(data: Any, signature: Signature | None) -> pd.DataFrame | np.ndarray:
    """What ``predict()`` hands the flavor: checked against the signature, in its order."""
    value = as_frame_or_array(data)
    if signature is None:
        return value
    if isinstance(signature.inputs, TensorSpec):
        return _prepare_tensor(value, signature.inputs)
    return _prepare_columns(value, signature.inputs)

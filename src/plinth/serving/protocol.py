"""The Open Inference Protocol (v2) tensors: decoding requests against a model's signature,
encoding predictions as named outputs, and the metadata a v2 client asks for.

See https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/ : a request
is ``{"inputs": [{"name", "shape", "datatype", "data"}, ...]}``; ``data`` is row-major, flat
or nested.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

from plinth.core.errors import InvalidInput
from plinth.models.signature import Signature, TensorSpec

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = [
    "Columns",
    "decode_columns_request",
    "decode_infer_request",
    "encode_outputs",
    "model_metadata",
    "to_v2_datatype",
]


class Columns:
    """Decoded v2 input columns (name -> 1-D NumPy array), already checked against the signature.

    The request path keeps these as plain arrays: the batcher concatenates the arrays of
    many requests and builds ONE DataFrame per model call (``frame_of``), so the model's own
    ``predict()`` validation runs once per batch, not once per request.
    """

    __slots__ = ("_arrays", "_matrix", "_values", "names", "rows")

    def __init__(
        self,
        arrays: dict[str, np.ndarray] | None,
        rows: int,
        *,
        matrix: np.ndarray | None = None,
        values: list[list[float]] | None = None,
        names: tuple[str, ...] = (),
    ) -> None:
        # the columns; or one (rows, len(names)) float matrix holding them in ``names`` order,
        # given as an array or as rows of Python floats (made an array once, when first asked)
        self._arrays = arrays
        self._matrix = matrix
        self._values = values
        self.rows = rows
        self.names = tuple(arrays) if arrays is not None else names

    @property
    def matrix(self) -> np.ndarray | None:
        """The (rows, columns) matrix, when the columns came as one (None otherwise)."""
        if self._matrix is None and self._values is not None:
            import numpy as np

            self._matrix = np.array(self._values, dtype=np.float64)
        return self._matrix

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            matrix = self.matrix
            assert matrix is not None
            self._arrays = {n: matrix[:, i] for i, n in enumerate(self.names)}
        return self._arrays

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        return f"Columns({list(self.names)!r}, rows={self.rows})"

    def frame(self) -> pd.DataFrame:
        import numpy as np
        import pandas as pd

        if self.matrix is not None:
            return pd.DataFrame(self.matrix, columns=_index(self.names), copy=False)
        arrays = list(self.arrays.values())
        if len({a.dtype for a in arrays}) == 1 and arrays[0].dtype.kind in "biuf":
            # one 2-D block: several times cheaper than pandas consolidating a dict of columns
            return pd.DataFrame(np.column_stack(arrays), columns=_index(tuple(self.arrays)), copy=False)
        return pd.DataFrame(self.arrays, copy=False)

    @staticmethod
    def merge(parts: list[Columns]) -> Columns:
        """One Columns holding the rows of ``parts`` in order (all have the same names)."""
        import numpy as np

        names = parts[0].names
        rows = sum(p.rows for p in parts)
        if all(p._values is not None and p._matrix is None for p in parts):  # rows of floats: one list
            return Columns(None, rows, values=[v for p in parts for v in p._values], names=names)  # type: ignore[union-attr]
        if all(p._matrix is not None or p._values is not None for p in parts):
            return Columns(None, rows, matrix=np.concatenate([p.matrix for p in parts]), names=names)  # type: ignore[misc]
        return Columns({n: np.concatenate([p.arrays[n] for p in parts]) for n in names}, rows)


@functools.lru_cache(maxsize=256)
def _index(names: tuple[str, ...]) -> pd.Index:
    """The column index of a model's inputs, built once (an Index of strings is slow to build)."""
    import pandas as pd

    return pd.Index(names)


def frame_of(data: Any) -> Any:
    """``data`` as a model takes it: Columns become a DataFrame; anything else is unchanged."""
    return data.frame() if isinstance(data, Columns) else data


# Signature type -> v2 datatype, and v2 datatype -> NumPy dtype.
_TO_V2 = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
    "binary": "BYTES",
    "datetime": "BYTES",
    "any": "BYTES",
}
_NUMPY = {v2: t for t, v2 in _TO_V2.items() if v2 != "BYTES"} | {"BYTES": "object"}
DATATYPES = frozenset(_NUMPY)


def to_v2_datatype(type_: str) -> str:
    return _TO_V2.get(type_, "BYTES")


def _v2_kind(datatype: str) -> str:
    if datatype == "BOOL":
        return "bool"
    if datatype.startswith(("INT", "UINT")):
        return "int"
    if datatype.startswith("FP"):
        return "float"
    return "bytes"


def _compatible(given: str, expected: str) -> bool:
    """Whether a tensor of ``given`` may feed an input of ``expected`` (safe numeric widening)."""
    if given == expected:
        return True
    have, want = _v2_kind(given), _v2_kind(expected)
    return (have, want) in {("int", "int"), ("int", "float"), ("float", "float")}


def _spec_entries(spec: list[Any] | TensorSpec | None, default: str) -> list[dict[str, Any]]:
    if spec is None:
        return []
    if isinstance(spec, TensorSpec):
        return [{"name": default, "datatype": to_v2_datatype(spec.dtype), "shape": list(spec.shape)}]
    return [{"name": c.name, "datatype": to_v2_datatype(c.type), "shape": [-1]} for c in spec]


def model_metadata(name: str, versions: list[str], platform: str, signature: Signature | None) -> dict[str, Any]:
    """The v2 model metadata: inputs and outputs from the signature, with v2 datatypes."""
    return {
        "name": name,
        "versions": versions,
        "platform": platform,
        "inputs": _spec_entries(signature.inputs if signature else None, "input-0"),
        "outputs": _spec_entries(signature.outputs if signature else None, "output-0"),
    }


def _expect(entry: dict[str, Any]) -> str:
    return f"{entry['datatype']} with shape {entry['shape']}"


def _tensor(item: Any, index: int) -> tuple[str, np.ndarray, str]:
    """(name, array in its shape, datatype) of one request input; InvalidInput naming it."""
    import numpy as np

    if not isinstance(item, dict):
        raise InvalidInput(f"inputs[{index}] must be an object with name, shape, datatype and data", field="inputs")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{index}] needs a name", field="inputs")
    shape, datatype, data = item.get("shape"), item.get("datatype"), item.get("data")
    if not isinstance(shape, list) or not (
        (len(shape) == 1 and type(shape[0]) is int and shape[0] >= 0)  # the common case, checked quickly
        or all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(f"input {name!r}: shape must be a list of non-negative ints, got {shape!r}", field=name)
    dtype = _numpy_dtypes().get(datatype) if isinstance(datatype, str) else None
    if dtype is None:
        raise InvalidInput(
            f"input {name!r}: datatype {datatype!r} is not one of {', '.join(sorted(DATATYPES))}", field=name
        )
    if not isinstance(data, list):
        raise InvalidInput(f"input {name!r}: data must be a list", field=name)
    try:
        array = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput(f"input {name!r}: data is not {datatype}: {exc}", field=name, expected=datatype) from None
    size = shape[0] if len(shape) == 1 else math.prod(shape)
    if array.size != size:
        raise InvalidInput(
            f"input {name!r}: shape {shape} needs {size} values, data has {array.size}", field=name, expected=shape
        )
    if datatype == "BYTES":
        array = np.array([v.decode() if isinstance(v, bytes) else v for v in array.ravel()], dtype=object)
    if array.ndim == 1 and len(shape) == 1:
        return name, array, datatype
    return name, array.reshape(shape), datatype


@functools.cache
def _numpy_dtypes() -> dict[str, np.dtype[Any]]:
    """v2 datatype -> NumPy dtype object (a dtype given by name is parsed on every call)."""
    import numpy as np

    return {v2: np.dtype(t) for v2, t in _NUMPY.items()}


_EXPECTED: dict[int, tuple[Any, list[dict[str, Any]]]] = {}


def _expected_inputs(inputs: list[Any] | TensorSpec) -> list[dict[str, Any]]:
    """The v2 input entries of a signature's inputs, built once per signature."""
    found = _EXPECTED.get(id(inputs))
    if found is None or found[0] is not inputs:
        if len(_EXPECTED) > 1024:
            _EXPECTED.clear()
        found = _EXPECTED[id(inputs)] = (inputs, _spec_entries(inputs, "input-0"))
    return found[1]


_FP64_ROWS: dict[int, tuple[Any, dict[str, int] | None, tuple[str, ...]]] = {}


def _fp64_positions(inputs: list[Any] | TensorSpec) -> tuple[dict[str, int] | None, tuple[str, ...]]:
    """(name -> position, names in order) of a column signature whose inputs are all float64;
    (None, ()) otherwise. Worked out once per signature."""
    found = _FP64_ROWS.get(id(inputs))
    if found is None or found[0] is not inputs:
        positions, names = None, ()
        if isinstance(inputs, list) and inputs and all(to_v2_datatype(c.type) == "FP64" for c in inputs):
            positions = {c.name: i for i, c in enumerate(inputs)}
            names = tuple(positions)
        if len(_FP64_ROWS) > 1024:
            _FP64_ROWS.clear()
        found = _FP64_ROWS[id(inputs)] = (inputs, positions, names)
    return found[1], found[2]


def _one_row(items: list[Any], inputs: list[Any] | TensorSpec) -> Columns | None:
    """The request as one float64 row, when it is the common single-row request of an all-float64
    column model: every input named once, ``shape [1]``, ``FP64``, one float. Anything else
    (None) takes the general path, which answers it the same way or names what is wrong."""
    positions, names = _fp64_positions(inputs)
    if positions is None or len(items) != len(positions):
        return None
    values: list[float] = [0.0] * len(items)
    seen = 0
    try:
        for item in items:
            # a missing key, an item that is not an object or a name that is not a string end
            # here (KeyError, TypeError): the general path says what is wrong
            at = positions[item["name"]]
            shape = item["shape"]
            data = item["data"]
            if (
                item["datatype"] != "FP64"
                or type(shape) is not list
                or len(shape) != 1
                or type(shape[0]) is not int
                or shape[0] != 1
                or type(data) is not list
                or len(data) != 1
            ):
                return None
            value = data[0]
            if type(value) is not float:
                return None
            values[at] = value
            seen |= 1 << at
    except (KeyError, TypeError):
        return None
    if seen != (1 << len(items)) - 1:  # a name given twice, so another missing
        return None
    return Columns(None, 1, values=[values], names=names)


def decode_infer_request(body: Any, signature: Signature | None) -> tuple[pd.DataFrame | np.ndarray | Columns, int]:
    """The model input of a v2 infer request and its number of rows, checked against the signature.

    For a column signature with one input per column, the answer is :class:`Columns` (NumPy
    arrays, no pandas); ``frame_of`` turns it into the DataFrame the model takes.
    """
    if not isinstance(body, dict):
        raise InvalidInput("an infer request is a JSON object with 'inputs'", field="inputs")
    items = body.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidInput("an infer request needs a non-empty 'inputs' list", field="inputs")
    if signature is not None:
        one = _one_row(items, signature.inputs)
        if one is not None:
            return one, 1
    import pandas as pd

    tensors = [_tensor(item, i) for i, item in enumerate(items)]
    names = [t[0] for t in tensors]
    if len(set(names)) != len(names):
        raise InvalidInput("inputs have duplicate names", field="inputs")
    if signature is None:
        if len(tensors) == 1:
            return tensors[0][1], len(tensors[0][1]) if tensors[0][1].ndim else 1
        return _frame(tensors), len(tensors[0][1])
    expected = _expected_inputs(signature.inputs)
    if isinstance(signature.inputs, TensorSpec):
        if len(tensors) != 1:
            raise InvalidInput(f"the model takes one input: {_expect(expected[0])}", field="inputs")
        name, array, datatype = tensors[0]
        _check_datatype(name, datatype, expected[0])
        want = signature.inputs.shape
        if array.ndim != len(want) or any(w != -1 and h != w for h, w in zip(array.shape, want, strict=False)):
            raise InvalidInput(
                f"input {name!r} has shape {list(array.shape)}, expected {_expect(expected[0])} (-1: any size)",
                field=name,
                expected=_expect(expected[0]),
            )
        return array, int(array.shape[0]) if array.ndim else 1
    by_name = {e["name"]: e for e in expected}
    given = {t[0]: t for t in tensors}
    if len(tensors) == 1 and tensors[0][0] not in by_name and tensors[0][1].ndim == 2:
        # one [N, k] tensor for a k-column model, as Triton/KServe clients send a feature matrix
        name, array, datatype = tensors[0]
        if array.shape[1] != len(expected):
            raise InvalidInput(
                f"input {name!r} has shape {list(array.shape)}, expected [-1, {len(expected)}] "
                f"(columns {', '.join(by_name)}) or one input per column",
                field=name,
            )
        for e in expected:
            _check_datatype(name, datatype, e)
        frame = pd.DataFrame({e["name"]: array[:, i] for i, e in enumerate(expected)})
        return frame.infer_objects(), len(frame)
    unknown = [n for n in given if n not in by_name]
    if unknown:
        raise InvalidInput(
            f"input {unknown[0]!r} is not one of the model's inputs ({', '.join(by_name)})", field=unknown[0]
        )
    columns: dict[str, np.ndarray] = {}
    for e in expected:
        if e["name"] not in given:
            raise InvalidInput(f"missing input {e['name']!r} (expected {_expect(e)})", field=e["name"])
        name, array, datatype = given[e["name"]]
        _check_datatype(name, datatype, e)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InvalidInput(
                f"input {name!r} has shape {list(array.shape)}, expected {_expect(e)}", field=name, expected=_expect(e)
            )
        columns[name] = array
    sizes = {len(a) for a in columns.values()}
    if len(sizes) > 1:
        raise InvalidInput(f"inputs have different batch sizes: {sorted(sizes)}", field="inputs")
    rows = sizes.pop() if sizes else 0
    return Columns(columns, rows), rows


def _frame(tensors: list[tuple[str, Any, str]]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({name: array.reshape(len(array), -1)[:, 0] for name, array, _ in tensors})


def _check_datatype(name: str, datatype: str, expected: dict[str, Any]) -> None:
    if not _compatible(datatype, expected["datatype"]):
        raise InvalidInput(
            f"input {name!r} has datatype {datatype}, expected {_expect(expected)}",
            field=name,
            expected=_expect(expected),
            actual=datatype,
        )


def decode_columns_request(body: Any) -> tuple[Any, int]:
    """The input of ``POST /models/{name}/predict``: ``{"records": [...]}``, ``{"columns": {...}}``
    or ``{"dataframe_split": {"columns", "data"}}`` (the MLflow shape)."""
    import pandas as pd

    if isinstance(body, list):
        body = {"records": body}
    if not isinstance(body, dict):
        raise InvalidInput("send {'records': [{...}, ...]} or {'columns': {name: [values]}}", field="body")
    if "records" in body:
        records = body["records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise InvalidInput("'records' must be a list of objects", field="records")
        return pd.DataFrame.from_records(records), len(records)
    if "columns" in body:
        cols = body["columns"]
        if not isinstance(cols, dict) or not all(isinstance(v, list) for v in cols.values()):
            raise InvalidInput("'columns' must map each column name to a list of values", field="columns")
        sizes = {len(v) for v in cols.values()}
        if len(sizes) > 1:
            raise InvalidInput(f"columns have different lengths: {sorted(sizes)}", field="columns")
        return pd.DataFrame(cols), sizes.pop() if sizes else 0
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("data"), list):
            raise InvalidInput("'dataframe_split' needs 'columns' and 'data'", field="dataframe_split")
        try:
            frame = pd.DataFrame(split["data"], columns=split.get("columns"))
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"'dataframe_split' does not make a table: {exc}", field="dataframe_split") from None
        return frame, len(frame)
    raise InvalidInput("send {'records': [{...}, ...]} or {'columns': {name: [values]}}", field="body")


_DTYPE_V2: dict[Any, str] = {}  # NumPy dtype -> v2 datatype, filled as dtypes are met


def _datatype_of(array: np.ndarray) -> str:
    dtype = array.dtype
    found = _DTYPE_V2.get(dtype)
    if found is None:
        found = _TO_V2.get(str(dtype), "FP64") if dtype.kind in "biuf" else "BYTES"
        _DTYPE_V2[dtype] = found
    return found


def _values(array: np.ndarray) -> list[Any]:
    if array.dtype.kind in "biuf":
        return array.ravel().tolist()
    return [v if isinstance(v, str | int | float | bool) or v is None else str(v) for v in array.ravel().tolist()]


def encode_outputs(result: Any, signature: Signature | None) -> list[dict[str, Any]]:
    """Named v2 outputs of a prediction: one per column of a frame, ``output-0`` for an array."""
    import numpy as np

    if type(result) is np.ndarray and result.ndim == 1 and result.dtype.kind in "biuf":
        # the common answer, a column of numbers (one per row): no frame checks, no copies
        outputs = signature.outputs if signature else None
        name = outputs[0].name if isinstance(outputs, list) and len(outputs) == 1 else "output-0"
        return [{"name": name, "shape": [len(result)], "datatype": _datatype_of(result), "data": result.tolist()}]
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        arrays = [(str(c), result[c].to_numpy()) for c in result.columns]
    else:
        array = np.asarray(result)
        name = "output-0"
        outputs = signature.outputs if signature else None
        if isinstance(outputs, list) and len(outputs) == 1 and (array.ndim == 1 or array.shape[1:] == (1,)):
            name = outputs[0].name
        arrays = [(name, array)]
    return [
        {"name": name, "shape": list(a.shape), "datatype": _datatype_of(a), "data": _values(a)} for name, a in arrays
    ]


def records_of(result: Any) -> list[Any]:
    """A prediction as JSON rows for the plain endpoint."""
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return result.to_dict(orient="records")
    return np.asarray(result).tolist()

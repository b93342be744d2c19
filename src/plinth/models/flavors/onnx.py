"""ONNX: the model's bytes as they are, run with onnxruntime on the CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput
from plinth.models.flavors.base import missing_extra, pinned

NAME = "onnx"
FILE = "model.onnx"
_ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
    "tensor(string)": "object",
}


def handles(model: Any) -> bool:
    return type(model).__module__.startswith("onnx") and type(model).__name__ == "ModelProto"


def requirements(options: dict[str, Any]) -> list[str]:
    return pinned("onnxruntime", "numpy")


def save(model: Any, folder: Path, **_: Any) -> dict[str, Any]:
    data = model if isinstance(model, bytes) else model.SerializeToString()
    (folder / FILE).write_bytes(data)
    return {"file": FILE}


def load(folder: Path, options: dict[str, Any], trust: bool, where: str) -> OnnxPredictor:
    if options.get("file") != FILE:
        raise InvalidInput(f"model {where}: the manifest names no ONNX file")
    try:
        import onnxruntime as ort
    except ImportError:
        raise missing_extra("onnxruntime", "onnx") from None
    so = ort.SessionOptions()
    so.log_severity_level = 3
    session = ort.InferenceSession(str(folder / FILE), sess_options=so, providers=["CPUExecutionProvider"])
    return OnnxPredictor(session)


class OnnxPredictor:
    def __init__(self, session: Any) -> None:
        self.raw = session
        self.inputs = session.get_inputs()
        self.outputs = [o.name for o in session.get_outputs()]

    def _feed(self, data: Any) -> dict[str, Any]:
        import numpy as np

        if len(self.inputs) == 1:
            meta = self.inputs[0]
            array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            return {meta.name: array.astype(_ELEMENT_TYPES.get(meta.type, array.dtype), copy=False)}
        if not hasattr(data, "columns"):
            raise InvalidInput(
                f"this ONNX model takes {len(self.inputs)} inputs ({', '.join(i.name for i in self.inputs)}): "
                "pass a DataFrame with one column each",
                field="input",
            )
        feed = {}
        for meta in self.inputs:
            if meta.name not in data.columns:
                raise InvalidInput(f"input is missing column {meta.name!r} (expected {meta.type})", field=meta.name)
            column = data[meta.name].to_numpy().reshape(-1, 1)
            feed[meta.name] = column.astype(_ELEMENT_TYPES.get(meta.type, column.dtype), copy=False)
        return feed

    def run(self, data: Any) -> list[Any]:
        return list(self.raw.run(None, self._feed(data)))

    def predict(self, data: Any, **params: Any) -> Any:
        return self.run(data)[0]

    def predict_proba(self, data: Any) -> Any:
        results = self.run(data)
        if len(results) < 2:
            raise InvalidInput("this ONNX model has a single output; it has no predict_proba", field="method")
        return results[1]

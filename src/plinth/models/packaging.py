"""Saving a model to a folder with its manifest, and loading a folder back (verified)."""

from __future__ import annotations

import json
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput
from plinth.models.flavors import detect_flavor, flavor_module
from plinth.models.loaded import LoadedModel
from plinth.models.manifest import MANIFEST_NAME, Manifest
from plinth.models.signature import Signature, TensorSpec, as_frame_or_array, infer_spec, prepare_input

__all__ = ["load_folder", "save_model"]

EXAMPLE_FILE = "input_example.json"
EXAMPLE_ROWS = 10


def _write_example(folder: Path, example: Any) -> str:
    import numpy as np

    value = as_frame_or_array(example)
    if isinstance(value, np.ndarray):
        payload = {"kind": "tensor", "dtype": str(value.dtype), "data": value[:EXAMPLE_ROWS].tolist()}
        text = json.dumps(payload, default=str)
    else:
        text = value.head(EXAMPLE_ROWS).to_json(orient="split", date_format="iso", index=False)
        text = json.dumps({"kind": "columns", **json.loads(text)})
    (folder / EXAMPLE_FILE).write_text(text)
    return EXAMPLE_FILE


def read_example(folder: Path, name: str) -> Any:
    import numpy as np
    import pandas as pd

    payload = json.loads((folder / name).read_text())
    if payload.get("kind") == "tensor":
        return np.asarray(payload["data"], dtype=payload.get("dtype") if payload.get("dtype") != "object" else None)
    return pd.DataFrame(payload["data"], columns=payload["columns"])


def _signature(value: Any) -> Signature | None:
    if value is None:
        return None
    if isinstance(value, Signature):
        return value
    return Signature.from_dict(value)


def save_model(
    model: Any,
    path: str | Path,
    *,
    flavor: str | None = None,
    signature: Signature | dict[str, Any] | None = None,
    input_example: Any = None,
    requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
    serialization: str | None = None,
    artifacts: dict[str, Any] | None = None,
    code_paths: list[str | Path] | None = None,
) -> Manifest:
    """Write ``model`` to a new folder ``path`` with its ``plinth-model.yaml``.

    The signature is inferred from ``input_example`` unless given; the model is run on the
    example to infer its outputs too.
    """
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInput(f"{folder} exists and is not an empty folder", field="path")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a mapping", field="metadata")
    if requirements is not None and (
        not isinstance(requirements, list | tuple) or not all(isinstance(r, str) for r in requirements)
    ):
        raise InvalidInput("requirements must be a list of strings such as 'pandas>=2'", field="requirements")
    sig = _signature(signature)
    flavor = flavor or detect_flavor(model)
    module = flavor_module(flavor)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        manifest = _write(
            model,
            folder,
            module,
            flavor,
            sig,
            input_example,
            requirements,
            metadata,
            serialization,
            artifacts,
            code_paths,
        )
    except BaseException:
        if created:  # a model that could not be saved leaves nothing behind
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return manifest


def _write(
    model: Any,
    folder: Path,
    module: Any,
    flavor: str,
    sig: Signature | None,
    input_example: Any,
    requirements: list[str] | None,
    metadata: dict[str, Any] | None,
    serialization: str | None,
    artifacts: dict[str, Any] | None,
    code_paths: list[str | Path] | None,
) -> Manifest:
    options = module.save(
        model,
        folder,
        serialization=serialization,
        artifacts=artifacts,
        code_paths=code_paths,
        input_example=input_example,
    )
    example_file = _write_example(folder, input_example) if input_example is not None else None
    if sig is None and input_example is not None:
        inputs = infer_spec(input_example)
        sig = Signature(inputs, _infer_outputs(module, folder, options, input_example, inputs))
    reqs = list(dict.fromkeys([*module.requirements(options), *(requirements or [])]))
    (folder / "requirements.txt").write_text("".join(r + "\n" for r in reqs))
    manifest = Manifest(
        flavor=flavor,
        flavor_options=options,
        signature=sig.to_dict() if sig else None,
        input_example=example_file,
        requirements=reqs,
        metadata=json.loads(json.dumps(metadata or {}, default=str)),
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        python_version=platform.python_version(),
        files=Manifest.list_folder(folder),
    )
    (folder / MANIFEST_NAME).write_bytes(manifest.dumps())
    return manifest


def _infer_outputs(module: Any, folder: Path, options: dict[str, Any], example: Any, inputs: Any) -> Any:
    """Load the saved model back and run it on the example: the output's spec (or None)."""
    try:
        predictor = module.load(folder, options, True, str(folder))
        result = predictor.predict(prepare_input(example, Signature(inputs)))
        return infer_spec(_as_output(result))
    except Exception:  # a model that cannot predict on its example still gets logged
        return None


def _as_output(result: Any) -> Any:
    import numpy as np

    if isinstance(result, list | tuple) and result and not isinstance(result[0], dict):
        return np.asarray(result)
    return result


def load_folder(
    folder: str | Path, *, trust: bool = False, where: str | None = None, verify: bool = True
) -> LoadedModel:
    """Load a model folder after checking every file against its manifest.

    ``verify=False`` is for a folder the caller has just verified (the fetch cache).
    """
    folder = Path(folder)
    where = where or str(folder)
    manifest = Manifest.read_folder(folder)
    if verify:
        manifest.verify_folder(folder, where)
    module = flavor_module(manifest.flavor)
    predictor = module.load(folder, manifest.flavor_options, trust, where)
    signature = Signature.from_dict(manifest.signature) if manifest.signature else None
    return LoadedModel(manifest, predictor, signature, where, folder)


def is_tensor(signature: Signature | None) -> bool:
    return signature is not None and isinstance(signature.inputs, TensorSpec)

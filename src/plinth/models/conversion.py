"""Converting a scikit-learn model to ONNX (skl2onnx), checked for numerical equivalence.

The conversion runs in a run of its own (experiment ``model-conversions``) that logs the
ONNX model and the check's numbers; a registered source gets the converted model as the
next version of the same registered model (a sibling), tagged with where it came from
and how closely it agrees. A conversion that disagrees beyond the tolerance is refused
unless ``force=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plinth.core.errors import Conflict, InvalidInput
from plinth.core.uris import parse_reference

__all__ = ["ConversionResult", "convert"]

CONVERSION_EXPERIMENT = "model-conversions"


@dataclass(frozen=True)
class ConversionResult:
    source: str
    uri: str
    run_id: str
    check: dict[str, Any]
    registered: Any = None  # the new VersionInfo, when registered


def _initial_types(frame: Any) -> list[tuple[str, Any]]:
    """One float tensor for all-numeric inputs; else one input per column (skl2onnx's way)."""
    from skl2onnx.common.data_types import BooleanTensorType, FloatTensorType, Int64TensorType, StringTensorType

    kinds = {c: frame[c].dtype.kind for c in frame.columns}
    if all(k in "fiub" for k in kinds.values()):
        return [("input", FloatTensorType([None, len(kinds)]))]
    types = []
    for column, kind in kinds.items():
        cls = {"f": FloatTensorType, "i": Int64TensorType, "u": Int64TensorType, "b": BooleanTensorType}.get(
            kind, StringTensorType
        )
        types.append((str(column), cls([None, 1])))
    return types


def to_onnx(model: Any, example: Any) -> Any:
    """The ONNX ModelProto of a fitted scikit-learn model (classifiers without ZipMap)."""
    try:
        from skl2onnx import convert_sklearn
    except ImportError:
        raise InvalidInput("converting to ONNX needs skl2onnx: pip install 'plinth-ml[onnx]'") from None
    from sklearn.base import is_classifier

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if is_classifier(final) else None
    if hasattr(example, "columns"):
        types = _initial_types(example)
    else:
        from skl2onnx.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, *example.shape[1:]]))]
    try:
        return convert_sklearn(model, initial_types=types, options=options)
    except Exception as exc:  # skl2onnx raises many kinds; all mean "cannot convert this"
        raise InvalidInput(f"skl2onnx cannot convert {type(model).__name__}: {exc}") from None


def equivalence(source: Any, converted: Any, data: Any, rtol: float, atol: float) -> dict[str, Any]:
    """How closely the converted model's predictions (and probabilities) match the source's."""
    import numpy as np

    expected = np.asarray(source.predict(data))
    actual = np.asarray(converted.predict(data)).reshape(expected.shape)
    check: dict[str, Any] = {"rows": int(len(expected)), "rtol": rtol, "atol": atol}
    if expected.dtype.kind in "fc":
        diff = np.abs(expected.astype("float64") - actual.astype("float64"))
        check["max_abs_diff"] = float(diff.max()) if diff.size else 0.0
        passed = bool(np.allclose(actual, expected, rtol=rtol, atol=atol))
    else:
        agreement = float(np.mean(expected == actual)) if expected.size else 1.0
        check["label_agreement"] = agreement
        passed = agreement == 1.0
    if hasattr(source.raw, "predict_proba"):
        try:
            p_src = np.asarray(source.predict_proba(data), dtype="float64")
            p_new = np.asarray(converted.predict_proba(data), dtype="float64").reshape(p_src.shape)
            check["max_abs_diff_proba"] = float(np.abs(p_src - p_new).max()) if p_src.size else 0.0
            passed = passed and bool(np.allclose(p_new, p_src, rtol=rtol, atol=atol))
        except InvalidInput:
            pass
    check["passed"] = passed
    return check


def convert(
    uri: str,
    to: str = "onnx",
    *,
    name: str | None = None,
    data: Any = None,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    force: bool = False,
    trust: bool = False,
    project: str | None = None,
) -> ConversionResult:
    """Convert the scikit-learn model at ``uri`` to ONNX and register it beside the source.

    The check runs both models on ``data`` (the source's input example by default). A
    ``models:/`` source is registered under the same name unless ``name`` says another.
    """
    from plinth.models.packaging import load_folder
    from plinth.models.sdk import fetch, log_model
    from plinth.tracking.sdk import start_run

    if to != "onnx":
        raise InvalidInput(f"cannot convert to {to!r}: only onnx is supported", field="to")
    ref = parse_reference(uri, {"runs", "models"})
    source = load_folder(fetch(uri, project), trust=trust, where=uri, verify=False)
    if source.flavor != "sklearn":
        raise InvalidInput(
            f"{uri} is a {source.flavor} model; converting to ONNX handles scikit-learn models", field="uri"
        )
    sample = data if data is not None else source.input_example
    if sample is None:
        raise InvalidInput(f"{uri} has no input example: pass data= to check the conversion on", field="data")
    prepared = source.prepare(sample)
    onx = to_onnx(source.raw, prepared)
    resolved = uri
    if ref.kind == "models":
        from plinth.registry.sdk import resolve

        resolved = resolve(uri, project=project).uri
    target = name or (ref.name if ref.kind == "models" else None)
    tags = {"converted_from": resolved, "conversion": "skl2onnx"}
    with start_run(
        experiment=CONVERSION_EXPERIMENT, name=f"onnx-{ref.name}", tags=tags, project=project, system_metrics=False
    ) as run:
        info = log_model(
            onx,
            "model",
            flavor="onnx",
            input_example=prepared.head(10) if hasattr(prepared, "head") else prepared[:10],
            metadata={"converted_from": resolved},
        )
        converted = load_folder(fetch(info.uri, project), where=info.uri, verify=False)
        check = equivalence(source, converted, source.prepare(sample), rtol, atol)
        run.log_params({"converted_from": resolved, "rtol": rtol, "atol": atol})
        run.log_metrics(
            {k: float(v) for k, v in check.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        )
        run.set_tags({"equivalence.passed": str(check["passed"]).lower()})
    if not check["passed"] and not force:
        raise Conflict(
            f"the ONNX conversion of {resolved} disagrees with it beyond rtol={rtol}, atol={atol} "
            f"({check}); it was logged to {info.uri} but not registered (force=True registers it anyway)",
            check=check,
        )
    registered = None
    if target is not None:
        from plinth.registry.sdk import register_model

        registered = register_model(
            target,
            info.uri,
            description=f"ONNX conversion of {resolved}",
            tags={**tags, **{f"equivalence.{k}": str(v) for k, v in check.items()}},
            project=project,
        )
    return ConversionResult(resolved, info.uri, run.id, check, registered)

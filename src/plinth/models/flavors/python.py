"""Custom Python models: a :class:`PythonModel` subclass, its files and the models it uses.

The class is recorded by its import path and imported on load. Its attributes are saved as
JSON; files (``artifacts={"vocab": "vocab.txt"}``) are copied into the model folder and
handed to ``load_context`` as paths; models (``artifacts={"clf": fitted_estimator}``) are
saved as nested Plinth models in their own flavor and loaded by ``context.load_model``.
Code shipped inside the model (``code_paths``) runs on load, so it needs ``trust=True``.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput, PermissionDenied
from plinth.core.names import validate_name
from plinth.models.flavors.base import pinned

NAME = "python"
STATE_FILE = "python_model.json"


class PythonModel:
    """Base class of custom models: implement ``predict``; ``load_context`` is optional.

    >>> class Doubler(PythonModel):
    ...     def predict(self, model_input):
    ...         return model_input * 2
    """

    def load_context(self, context: ModelContext) -> None:
        """Called once after loading, with the model's files and nested models."""

    def predict(self, model_input: Any) -> Any:
        raise NotImplementedError("a PythonModel must implement predict(model_input)")


@dataclass
class ModelContext:
    """What ``load_context`` receives: local paths of the artifacts, nested models, metadata."""

    artifacts: dict[str, Path]
    metadata: dict[str, Any] = field(default_factory=dict)
    _models: dict[str, Path] = field(default_factory=dict)
    _trust: bool = False

    def load_model(self, name: str) -> Any:
        """A nested model saved from ``artifacts={name: model}``, loaded (a LoadedModel)."""
        from plinth.models.packaging import load_folder

        if name not in self._models:
            raise InvalidInput(f"this model has no nested model {name!r}; it has {sorted(self._models)}", field="name")
        return load_folder(self._models[name], trust=self._trust, where=f"nested model {name!r}")


def handles(model: Any) -> bool:
    return isinstance(model, PythonModel)


def requirements(options: dict[str, Any]) -> list[str]:
    return pinned("numpy", "pandas")


def save(
    model: Any,
    folder: Path,
    artifacts: dict[str, Any] | None = None,
    code_paths: list[str | Path] | None = None,
    **_: Any,
) -> dict[str, Any]:
    from plinth.models.packaging import save_model

    if not isinstance(model, PythonModel):
        raise InvalidInput("the python flavor saves instances of plinth.models.PythonModel", field="model")
    cls = type(model)
    if cls.__module__ == "__main__":
        raise InvalidInput(
            f"{cls.__name__} is defined in __main__, which the loader cannot import: define it in a module "
            "(and pass that file as code_paths=[...] if it is not installed)",
            field="model",
        )
    try:
        state = json.dumps(vars(model), sort_keys=True)
    except TypeError as exc:
        raise InvalidInput(
            f"the attributes of {cls.__name__} must be JSON values ({exc}); pass files and fitted models "
            "as artifacts={name: ...} and set them up in load_context",
            field="model",
        ) from None
    (folder / STATE_FILE).write_text(state)
    files: dict[str, str] = {}
    models: dict[str, str] = {}
    for name, value in (artifacts or {}).items():
        validate_name(name, "artifact name")
        if isinstance(value, str | Path):
            source = Path(value)
            if source.is_symlink() or not source.exists():
                raise InvalidInput(f"artifact {name!r}: {source} is not a file or folder", field="artifacts")
            target = folder / "artifacts" / name / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, symlinks=False)
            else:
                shutil.copyfile(source, target)
            files[name] = target.relative_to(folder).as_posix()
        else:
            target = folder / "models" / name
            save_model(value, target)
            models[name] = target.relative_to(folder).as_posix()
    code: list[str] = []
    for entry in code_paths or []:
        source = Path(entry)
        if source.is_symlink() or not source.exists():
            raise InvalidInput(f"code path {source} is not a file or folder", field="code_paths")
        target = folder / "code" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(source, target)
        code.append(target.relative_to(folder).as_posix())
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "state": STATE_FILE,
        "artifacts": files,
        "models": models,
        "code": code,
    }


def _import_class(path: str, where: str) -> type[PythonModel]:
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise InvalidInput(f"model {where}: class {path!r} is not 'module:Class'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(
            f"model {where} needs class {path}, which cannot be imported here ({exc}); install the code "
            "that defines it, or log the model with code_paths=[...]",
            field="class",
        ) from None
    if not isinstance(obj, type) or not issubclass(obj, PythonModel):
        raise InvalidInput(f"model {where}: {path} is not a plinth.models.PythonModel", field="class")
    return obj


def load(folder: Path, options: dict[str, Any], trust: bool, where: str) -> PythonPredictor:
    code = options.get("code") or []
    if code and not trust:
        raise PermissionDenied(
            f"model {where} ships Python code ({', '.join(code)}) that runs when it is loaded; "
            "pass trust=True only if you trust whoever logged it",
        )
    if code:
        root = str(folder / "code")
        if root not in sys.path:
            sys.path.insert(0, root)
    cls = _import_class(str(options.get("class", "")), where)
    instance = cls.__new__(cls)
    state_file = folder / str(options.get("state") or STATE_FILE)
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        if isinstance(state, dict):
            instance.__dict__.update(state)
    context = ModelContext(
        artifacts={k: folder / v for k, v in (options.get("artifacts") or {}).items()},
        metadata={},
        _models={k: folder / v for k, v in (options.get("models") or {}).items()},
        _trust=trust,
    )
    instance.load_context(context)
    return PythonPredictor(instance)


class PythonPredictor:
    def __init__(self, model: PythonModel) -> None:
        self.raw = model

    def predict(self, data: Any, **params: Any) -> Any:
        return self.raw.predict(data, **params) if params else self.raw.predict(data)

    def predict_proba(self, data: Any) -> Any:
        method = getattr(self.raw, "predict_proba", None)
        if method is None:
            raise InvalidInput(f"{type(self.raw).__name__} has no predict_proba", field="method")
        return method(data)

"""Flavors: how a kind of model is saved to a folder and loaded back.

Each flavor is a module with ``NAME``, ``handles(model)``, ``save(model, folder, **options)``
(returns the options recorded in the manifest), ``requirements(options)`` and
``load(folder, options, trust)`` (returns a :class:`~plinth.models.flavors.base.Predictor`).
Modules load on first use, so that ``import plinth.models`` imports no ML library.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from plinth.core.errors import InvalidInput

# In detection order: the boosters' scikit-learn wrappers are scikit-learn estimators too.
FLAVORS = {
    "python": "plinth.models.flavors.python",
    "xgboost": "plinth.models.flavors.xgboost",
    "lightgbm": "plinth.models.flavors.lightgbm",
    "onnx": "plinth.models.flavors.onnx",
    "torch": "plinth.models.flavors.torch",
    "sklearn": "plinth.models.flavors.sklearn",
}


def flavor_module(name: str) -> ModuleType:
    if name not in FLAVORS:
        raise InvalidInput(f"flavor {name!r} is not one of {', '.join(sorted(FLAVORS))}", field="flavor")
    return importlib.import_module(FLAVORS[name])


def detect_flavor(model: Any) -> str:
    """The flavor for a model object, judged by its type's module (no library is imported)."""
    for name in FLAVORS:
        if importlib.import_module(FLAVORS[name]).handles(model):
            return name
    raise InvalidInput(
        f"no flavor knows a {type(model).__module__}.{type(model).__qualname__}: pass flavor=..., or wrap it "
        "in a plinth.models.PythonModel",
        field="model",
    )

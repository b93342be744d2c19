"""LightGBM: saved as LightGBM's text model, never pickled.

A scikit-learn wrapper (``LGBMClassifier``...) is saved as its booster plus the few facts
its ``predict`` needs (the classes of a classifier), so that loading needs no pickle.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput
from plinth.models.flavors.base import missing_extra, module_of, pinned

NAME = "lightgbm"
FILE = "model.txt"
CLASSES = ("Booster", "LGBMClassifier", "LGBMRegressor", "LGBMRanker", "LGBMModel")


def handles(model: Any) -> bool:
    return module_of(model) == "lightgbm" and type(model).__name__ in CLASSES


def requirements(options: dict[str, Any]) -> list[str]:
    return pinned("lightgbm", "numpy", "scipy")


def save(model: Any, folder: Path, **_: Any) -> dict[str, Any]:
    cls = type(model).__name__
    if cls not in CLASSES:
        raise InvalidInput(f"the lightgbm flavor saves {', '.join(CLASSES)}, not {cls}", field="model")
    booster = model if cls == "Booster" else model.booster_
    booster.save_model(str(folder / FILE))
    options: dict[str, Any] = {"file": FILE, "class": cls}
    classes = getattr(model, "classes_", None)
    if classes is not None:
        options["classes"] = json.loads(json.dumps(list(classes), default=lambda v: v.item()))
        options["predict_proba"] = True
    return options


def load(folder: Path, options: dict[str, Any], trust: bool, where: str) -> LightGBMPredictor:
    if options.get("class") not in CLASSES or options.get("file") != FILE:
        raise InvalidInput(f"model {where}: the manifest names no known LightGBM model class")
    try:
        import lightgbm
    except ImportError:
        raise missing_extra("lightgbm", "lightgbm") from None
    booster = lightgbm.Booster(model_file=str(folder / FILE))
    return LightGBMPredictor(booster, options.get("classes"))


class LightGBMPredictor:
    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self.raw = booster
        self._classes = classes

    def predict_proba(self, data: Any) -> Any:
        import numpy as np

        if self._classes is None:
            raise InvalidInput("this LightGBM model is not a classifier; it has no predict_proba", field="method")
        p = np.asarray(self.raw.predict(data))
        return np.column_stack([1 - p, p]) if p.ndim == 1 else p

    def predict(self, data: Any, **params: Any) -> Any:
        import numpy as np

        if self._classes is None:
            return self.raw.predict(data, **params)
        proba = self.predict_proba(data)
        return np.asarray(self._classes)[np.argmax(proba, axis=1)]

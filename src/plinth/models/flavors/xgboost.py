"""XGBoost: saved in XGBoost's own format (UBJSON), never pickled.

The estimator class is recorded by name and chosen from a fixed list on load, so a
manifest cannot make the loader import anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput
from plinth.models.flavors.base import missing_extra, module_of, pinned

NAME = "xgboost"
FILE = "model.ubj"
CLASSES = ("Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")


def handles(model: Any) -> bool:
    return module_of(model) == "xgboost" and type(model).__name__ in CLASSES


def requirements(options: dict[str, Any]) -> list[str]:
    return pinned("xgboost-cpu", "numpy", "scipy")


def save(model: Any, folder: Path, **_: Any) -> dict[str, Any]:
    cls = type(model).__name__
    if cls not in CLASSES:
        raise InvalidInput(f"the xgboost flavor saves {', '.join(CLASSES)}, not {cls}", field="model")
    model.save_model(str(folder / FILE))
    return {"file": FILE, "class": cls, "predict_proba": hasattr(model, "predict_proba")}


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError:
        raise missing_extra("xgboost", "xgboost") from None
    return xgboost


def load(folder: Path, options: dict[str, Any], trust: bool, where: str) -> XGBoostPredictor:
    cls = options.get("class")
    if cls not in CLASSES or options.get("file") != FILE:
        raise InvalidInput(f"model {where}: the manifest names no known XGBoost model class")
    xgb = _xgb()
    model = getattr(xgb, cls)()
    model.load_model(str(folder / FILE))
    return XGBoostPredictor(model, xgb)


class XGBoostPredictor:
    def __init__(self, model: Any, xgb: Any) -> None:
        self.raw = model
        self._xgb = xgb

    def predict(self, data: Any, **params: Any) -> Any:
        if isinstance(self.raw, self._xgb.Booster):
            return self.raw.predict(self._xgb.DMatrix(data), **params)
        return self.raw.predict(data, **params)

    def predict_proba(self, data: Any) -> Any:
        if not hasattr(self.raw, "predict_proba"):
            raise InvalidInput(f"{type(self.raw).__name__} has no predict_proba", field="method")
        return self.raw.predict_proba(data)

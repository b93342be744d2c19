"""scikit-learn: saved with skops' secure format by default; pickle or joblib on request.

skops rebuilds an estimator from a description of it and refuses types nobody trusted,
so loading a skops file runs no code of the file's choosing. Types that skops leaves
untrusted but that are scikit-learn's own (a forest's ``Tree``) are trusted here; anything
else, and every pickle or joblib file, loads only with ``trust=True``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from plinth.core.errors import InvalidInput, PermissionDenied
from plinth.models.flavors.base import missing_extra, pinned, type_name

NAME = "sklearn"
SERIALIZATIONS = {"skops": "model.skops", "pickle": "model.pkl", "joblib": "model.joblib"}
# skops itself explains why this one is not trusted: crafted trees index without bounds checks.
NEVER_TRUSTED = frozenset({"sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"})


# --- importing skops without its start-up scan -----------------------------------------------
# On import, skops builds its default trust list by importing every scikit-learn module
# (all_estimators: about a second, and pytest through sklearn.utils._testing when it is
# installed). Plinth decides trust itself from the types a file names (``_safe``: every
# scikit-learn type but NEVER_TRUSTED, a superset of that list), so it imports skops with
# the scan skipped and gives skops a list that runs the scan the first time anyone else
# needs it. During Plinth's own loads the list is empty, which only makes skops stricter.
_skops_lock = threading.Lock()


class _EstimatorNames(list):  # type: ignore[type-arg]
    """skops' list of trusted estimator type names, filled on first use."""

    def _fill(self) -> None:
        if not getattr(self, "_filled", False):
            from sklearn.utils import all_estimators
            from skops.io._utils import get_type_name

            self._filled = True
            names = (get_type_name(c) for _, c in all_estimators())
            list.extend(self, [n for n in names if n.startswith("sklearn.")])

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return list.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return list.__len__(self)

    def __contains__(self, item: object) -> bool:
        self._fill()
        return list.__contains__(self, item)

    def __getitem__(self, index: Any) -> Any:
        self._fill()
        return list.__getitem__(self, index)

    def __add__(self, other: Any) -> Any:
        self._fill()
        return list(list.__iter__(self)) + list(other)


def _skops_io() -> Any:
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with _skops_lock:
        try:
            import sklearn.utils
        except ImportError:
            raise missing_extra("scikit-learn", "sklearn") from None
        real = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *a, **k: []
        try:
            import skops.io
        except ImportError:
            raise missing_extra("skops", "sklearn") from None
        finally:
            sklearn.utils.all_estimators = real
        names = _EstimatorNames()
        for module in ("skops.io._trusted_types", "skops.io._general"):
            if hasattr(sys.modules.get(module), "SKLEARN_ESTIMATOR_TYPE_NAMES"):
                sys.modules[module].SKLEARN_ESTIMATOR_TYPE_NAMES = names  # type: ignore[attr-defined]
    return skops.io


@contextmanager
def _plinth_trust() -> Iterator[None]:
    """Leave skops' unfilled estimator list alone while Plinth's policy decides."""
    general = sys.modules.get("skops.io._general")
    names = getattr(general, "SKLEARN_ESTIMATOR_TYPE_NAMES", None)
    if not isinstance(names, _EstimatorNames) or getattr(names, "_filled", False):
        yield
        return
    with _skops_lock:
        general.SKLEARN_ESTIMATOR_TYPE_NAMES = []  # type: ignore[union-attr]
        try:
            yield
        finally:
            general.SKLEARN_ESTIMATOR_TYPE_NAMES = names  # type: ignore[union-attr]


def handles(model: Any) -> bool:
    if not type(model).__module__.startswith("sklearn"):
        return any(c.__module__.startswith("sklearn.") for c in type(model).__mro__[1:]) and hasattr(model, "predict")
    return hasattr(model, "predict") or hasattr(model, "transform")


def requirements(options: dict[str, Any]) -> list[str]:
    extra = ["skops"] if options.get("serialization") == "skops" else ["joblib"]
    return pinned("scikit-learn", *extra, "numpy", "scipy")


def save(model: Any, folder: Path, serialization: str | None = None, **_: Any) -> dict[str, Any]:
    serialization = serialization or "skops"
    if serialization not in SERIALIZATIONS:
        raise InvalidInput(
            f"serialization {serialization!r} is not one of {', '.join(SERIALIZATIONS)}", field="serialization"
        )
    file = SERIALIZATIONS[serialization]
    path = folder / file
    if serialization == "skops":
        _skops_io().dump(model, path)
    elif serialization == "joblib":
        import joblib

        joblib.dump(model, path)
    else:
        import pickle

        with path.open("wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {
        "serialization": serialization,
        "file": file,
        "estimator": type_name(model),
        "feature_names": hasattr(model, "feature_names_in_"),
        "predict_proba": hasattr(model, "predict_proba"),
    }


def _safe(type_: str) -> bool:
    return type_.startswith("sklearn.") and type_ not in NEVER_TRUSTED


def load(folder: Path, options: dict[str, Any], trust: bool, where: str) -> SklearnPredictor:
    serialization = options.get("serialization")
    file = options.get("file")
    if serialization not in SERIALIZATIONS or file != SERIALIZATIONS[serialization]:
        raise InvalidInput(f"model {where}: the manifest names no known scikit-learn file")
    path = folder / file
    if serialization == "skops":
        from plinth.models.flavors import skops_reader

        # plain pipelines are read without importing skops (about 2 s of CPU); the rest by skops
        model = skops_reader.read(path, _safe)
        if model is not None:
            return SklearnPredictor(model, bool(options.get("feature_names")))
        sio = _skops_io()
        with _plinth_trust():
            untrusted = sio.get_untrusted_types(file=path)
            refused = [t for t in untrusted if not _safe(t)]
            if refused and not trust:
                raise PermissionDenied(
                    f"model {where} needs types that are not trusted to load safely: {', '.join(refused)}; "
                    "pass trust=True only if you trust whoever logged it",
                    types=refused,
                )
            model = sio.load(path, trusted=untrusted)
    else:
        if not trust:
            raise PermissionDenied(
                f"model {where} is stored with {serialization}, which runs arbitrary code when loaded; "
                "pass trust=True only if you trust whoever logged it (or log it with skops, the default)",
                serialization=serialization,
            )
        if serialization == "joblib":
            import joblib

            model = joblib.load(path)
        else:
            import pickle

            with path.open("rb") as fh:
                model = pickle.load(fh)  # noqa: S301 - the caller passed trust=True
    return SklearnPredictor(model, bool(options.get("feature_names")))


class SklearnPredictor:
    def __init__(self, model: Any, feature_names: bool) -> None:
        self.raw = model
        self._frame = feature_names

    # The model server turns this on (``array_input``): a frame whose columns are exactly the
    # fitted ones, in order, and all numeric goes to scikit-learn as one NumPy array, the same
    # values scikit-learn would take out of it, which skips its per-call DataFrame checks
    # (about 3× the cost of a small batch's predict). Anything else goes as it came. A linear
    # model's float64 matrix is then answered by a fused NumPy kernel (see sklearn_kernel).
    array_input = False

    def _x(self, data: Any) -> Any:
        if not hasattr(data, "to_numpy"):
            return data
        if not self._frame:
            return data.to_numpy()
        if self.array_input:
            names = self.fitted_names()
            if names is not None and tuple(data.columns) == names:
                array = data.to_numpy()
                if array.dtype.kind in "fiu":
                    return array
        return data

    def fitted_names(self) -> tuple[str, ...] | None:
        """The columns the model was fitted on, in order (None when fitted on an array)."""
        try:
            return self._names
        except AttributeError:
            names = getattr(self.raw, "feature_names_in_", None)
            self._names: tuple[str, ...] | None = None if names is None else tuple(str(n) for n in names)
            return self._names

    def predict(self, data: Any, **params: Any) -> Any:
        x = self._x(data)
        if self.array_input and not params:
            kernel = self.kernel()
            if kernel is not None:
                answer = kernel(x)
                if answer is not None:
                    return answer
        return self.raw.predict(x, **params)

    def kernel(self) -> Any:
        """The fused NumPy ``predict`` of a linear model (``sklearn_kernel``), built and checked
        against scikit-learn on first use; None for other models or with
        ``PLINTH_SERVE_SKLEARN_KERNEL=off``."""
        try:
            return self._kernel
        except AttributeError:
            from plinth.models.flavors import sklearn_kernel

            self._kernel: Any = sklearn_kernel.compile_predict(self.raw) if sklearn_kernel.enabled() else None
            return self._kernel

    def predict_proba(self, data: Any) -> Any:
        if not hasattr(self.raw, "predict_proba"):
            raise InvalidInput(f"{type(self.raw).__name__} has no predict_proba", field="method")
        return self.raw.predict_proba(self._x(data))

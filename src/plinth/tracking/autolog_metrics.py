"""Metrics that scikit-learn autologging adds beyond ``training_score``.

Training metrics: right after ``fit``, the fitted estimator is scored on its own training
data with the usual metrics of its kind (``training_accuracy_score``, ``training_f1_score``,
``training_log_loss``, ``training_roc_auc``… for classifiers; ``training_mean_squared_error``,
``training_root_mean_squared_error``, ``training_mean_absolute_error``, ``training_r2_score``
for regressors).

Validation metrics: after an autologged fit, ``estimator.score(X_val, y_val)`` and the
``sklearn.metrics`` functions called on that estimator's predictions log to the estimator's
run while it is still active, named ``<metric>_<dataset>``: the dataset is the name of the
caller's variable holding the data passed to ``predict`` / ``score`` (``accuracy_score_X_test``,
``LogisticRegression_score_X_val``), or ``eval`` when it has none; a second different
dataset with the same name gets ``-2``, ``-3``. Predictions are recognised by identity (a
weak reference to the array ``predict`` returned), so a copy of them is not.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import logging
import math
import threading
import weakref
from typing import Any

log = logging.getLogger("plinth.tracking")

__all__ = ["log_training_metrics", "patch_evaluation", "remember_fit"]

_CLASSIFIER = ("accuracy_score", "precision_score", "recall_score", "f1_score")
_REGRESSOR = ("mean_squared_error", "root_mean_squared_error", "mean_absolute_error", "r2_score")
# sklearn.metrics functions whose second argument is predictions / scores we can recognise
_EVAL_FUNCTIONS = (
    *_CLASSIFIER,
    "balanced_accuracy_score",
    "log_loss",
    "roc_auc_score",
    "average_precision_score",
    *_REGRESSOR,
    "mean_absolute_percentage_error",
    "median_absolute_error",
    "explained_variance_score",
)
_PREDICT_METHODS = ("predict", "predict_proba", "decision_function")

_lock = threading.Lock()
_fitted: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # estimator -> its run
_outputs: dict[int, tuple[weakref.ref[Any], Any, str]] = {}  # id(prediction) -> (ref, run, dataset name)
_names: dict[tuple[str, str], list[int]] = {}  # (run id, variable name) -> ids of the data objects named so
_local = threading.local()


@contextlib.contextmanager
def _no_fit_logging() -> Any:
    """Fits made inside an evaluation (a LabelEncoder inside ``f1_score``) are not autologged."""
    from plinth.tracking.autologging import _local as fit_local

    depth = getattr(fit_local, "depth", 0)
    fit_local.depth = depth + 1
    try:
        yield
    finally:
        fit_local.depth = depth


def remember_fit(estimator: Any, run: Any) -> None:
    """After an autologged fit: later predictions and scores of ``estimator`` log to ``run``."""
    with contextlib.suppress(TypeError):  # an estimator that cannot be weakly referenced: no validation metrics
        _fitted[estimator] = run


def _binary_or_weighted(y: Any) -> dict[str, Any]:
    import numpy as np

    return {} if len(np.unique(y)) <= 2 else {"average": "weighted"}


def log_training_metrics(run: Any, estimator: Any, X: Any, y: Any) -> None:
    """Score a fitted classifier or regressor on its training data; a metric that fails is skipped."""
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        names: tuple[str, ...] = _CLASSIFIER
    elif is_regressor(estimator):
        names = _REGRESSOR
    else:
        return
    out: dict[str, float] = {}
    _local.quiet = True  # our own predict calls are not validation predictions
    try:
        predicted = estimator.predict(X)
        for name in names:
            fn = _original(metrics, name)
            if fn is None:
                continue
            extra = _binary_or_weighted(y) if name in ("precision_score", "recall_score", "f1_score") else {}
            try:
                out[f"training_{name}"] = float(fn(y, predicted, **extra))
            except Exception as exc:  # noqa: BLE001 - a metric that does not apply to this data
                log.debug("plinth.autolog: %s not logged: %s", name, exc)
        if is_classifier(estimator) and hasattr(estimator, "predict_proba"):
            out.update(_probability_metrics(metrics, estimator, X, y))
    except Exception as exc:  # noqa: BLE001 - a model that cannot predict its own training data
        log.warning("plinth.autolog: no training metrics for %s: %s", type(estimator).__name__, exc)
        return
    finally:
        _local.quiet = False
    if out:
        run.log_metrics({k: v for k, v in out.items() if not math.isnan(v)})


def _probability_metrics(metrics: Any, estimator: Any, X: Any, y: Any) -> dict[str, float]:
    try:
        proba = estimator.predict_proba(X)
    except Exception:  # noqa: BLE001 - e.g. an SVC without probability=True
        return {}
    out: dict[str, float] = {}
    labels = getattr(estimator, "classes_", None)
    try:
        out["training_log_loss"] = float(_original(metrics, "log_loss")(y, proba, labels=labels))
        if proba.shape[1] == 2:
            out["training_roc_auc"] = float(_original(metrics, "roc_auc_score")(y, proba[:, 1]))
        else:
            out["training_roc_auc"] = float(
                _original(metrics, "roc_auc_score")(y, proba, multi_class="ovr", labels=labels)
            )
    except Exception as exc:  # noqa: BLE001
        log.debug("plinth.autolog: probability metrics not logged: %s", exc)
    return out


def _original(module: Any, name: str) -> Any:
    fn = getattr(module, name, None)
    return getattr(fn, "__wrapped__", fn) if getattr(fn, "_plinth_autolog", False) else fn


def _caller_name(data: Any, frame: Any) -> str:
    """The name of a variable in the user's frame that holds ``data``, else ``eval``."""
    while frame is not None and frame.f_globals.get("__name__", "").startswith(("sklearn", "plinth.tracking")):
        frame = frame.f_back
    if frame is not None:
        for name, value in frame.f_locals.items():
            if value is data and not name.startswith("_"):
                return name
    return "eval"


def _dataset(run: Any, data: Any, frame: Any) -> str:
    """A stable name for ``data`` within ``run``: the variable name, suffixed for a new object."""
    name = _caller_name(data, frame)
    seen = _names.setdefault((run.id, name), [])
    if id(data) not in seen:
        seen.append(id(data))
    index = seen.index(id(data))
    return name if index == 0 else f"{name}-{index + 1}"


def _log(run: Any, key: str, value: Any) -> None:
    if getattr(run, "_ended", False):
        log.info("plinth.autolog: %s not logged: run %s has ended (fit inside `with plinth.start_run()`)", key, run.id)
        return
    try:
        run.log_metric(key, float(value))
    except Exception as exc:  # noqa: BLE001 - evaluation must not fail because logging did
        log.warning("plinth.autolog: %s not logged: %s", key, exc)


def _wrap_predict(original: Any) -> Any:
    @functools.wraps(original)
    def predict(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _no_fit_logging():
            result = original(self, *args, **kwargs)
        run = _fitted.get(self) if not getattr(_local, "quiet", False) else None
        if run is not None and args:
            try:
                ref = weakref.ref(result)
            except TypeError:
                return result
            with _lock:
                for key in [k for k, (r, _, _) in _outputs.items() if r() is None]:
                    del _outputs[key]
                _outputs[id(result)] = (ref, run, _dataset(run, args[0], inspect.currentframe().f_back))
        return result

    predict._plinth_autolog = True  # type: ignore[attr-defined]
    return predict


def _wrap_score(original: Any) -> Any:
    @functools.wraps(original)
    def score(self: Any, X: Any, y: Any, *args: Any, **kwargs: Any) -> Any:
        _local.quiet, quiet = True, getattr(_local, "quiet", False)
        try:
            with _no_fit_logging():
                value = original(self, X, y, *args, **kwargs)
        finally:
            _local.quiet = quiet
        run = _fitted.get(self) if not quiet else None
        if run is not None:
            with _lock:
                name = _dataset(run, X, inspect.currentframe().f_back)
            _log(run, f"{type(self).__name__}_score_{name}", value)
        return value

    score._plinth_autolog = True  # type: ignore[attr-defined]
    return score


def _wrap_metric(name: str, original: Any) -> Any:
    @functools.wraps(original)
    def metric(*args: Any, **kwargs: Any) -> Any:
        with _no_fit_logging():
            value = original(*args, **kwargs)
        predicted = (
            args[1]
            if len(args) > 1
            else next((kwargs[k] for k in ("y_pred", "y_score", "y_proba", "y_prob") if k in kwargs), None)
        )
        found = _outputs.get(id(predicted)) if predicted is not None else None
        if found is not None and found[0]() is predicted and not getattr(_local, "quiet", False):
            _log(found[1], f"{name}_{found[2]}", value)
        return value

    metric._plinth_autolog = True  # type: ignore[attr-defined]
    return metric


class _Descriptor:
    """Wraps a non-function attribute such as scikit-learn's ``available_if``: ``hasattr`` keeps its answer."""

    def __init__(self, original: Any, wrap: Any) -> None:
        self.original = original
        self.call = wrap(lambda obj, *args, **kwargs: original.__get__(obj, type(obj))(*args, **kwargs))
        self._plinth_autolog = True

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        bound = self.original.__get__(obj, owner)  # raises AttributeError where the method is not available
        return bound if obj is None else functools.partial(self.call, obj)


def patch_evaluation(patched: dict[tuple[Any, str], Any], classes: list[type]) -> None:
    """Wrap predict/score of ``classes`` and the sklearn.metrics functions; record originals in ``patched``."""
    import sklearn.metrics as metrics

    for cls, method in itertools.product(classes, (*_PREDICT_METHODS, "score")):
        original = cls.__dict__.get(method)
        if original is None or (cls, method) in patched or getattr(original, "_plinth_autolog", False):
            continue
        wrap = _wrap_score if method == "score" else _wrap_predict
        if inspect.isfunction(original):
            replacement: Any = wrap(original)
        elif hasattr(original, "__get__") and not isinstance(original, (staticmethod, classmethod, property)):
            replacement = _Descriptor(original, wrap)
        else:
            continue
        patched[(cls, method)] = original
        setattr(cls, method, replacement)
    for name in _EVAL_FUNCTIONS:
        original = getattr(metrics, name, None)
        if original is None or getattr(original, "_plinth_autolog", False):
            continue
        patched[(metrics, name)] = original
        setattr(metrics, name, _wrap_metric(name, original))

"""A fused NumPy ``predict`` for linear scikit-learn models, checked against scikit-learn.

A fitted StandardScaler + LogisticRegression computes a batch's answer in a few
microseconds of arithmetic; scikit-learn spends about 250 µs per ``predict`` call around it,
whatever the batch size (validation of the input at every step, array-API namespace
dispatch, fitted checks, tags). On a model server whose batches hold a few requests, that
fixed cost is most of a request's CPU. :func:`compile_predict` builds, for the models it
knows, a function doing only the arithmetic, with the same NumPy operations in the same order
as scikit-learn's own ``transform``/``decision_function``/``predict``, so the answers are the
same bits; it then checks that on probe batches against the model's ``predict`` and gives
up (returns None) on any difference.

Known: a Pipeline of StandardScaler steps (or ``"passthrough"``) ending in
LogisticRegression, RidgeClassifier, LinearSVC, LinearRegression, Ridge, Lasso or
ElasticNet; or one of those alone; exact types only (a subclass may override ``predict``).
The function takes a float64 matrix with the fitted number of columns; for anything else
(another dtype or shape, NaN or infinity, which scikit-learn answers with an error) it
returns None and the caller asks scikit-learn, which gives its own answer or error.

The model server uses it (``SklearnPredictor.array_input``); ``PLINTH_SERVE_SKLEARN_KERNEL=off``
turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["compile_predict", "enabled"]

_CLASSIFIERS = {
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._ridge.RidgeClassifier",
    "sklearn.svm._classes.LinearSVC",
}
_REGRESSORS = {
    "sklearn.linear_model._base.LinearRegression",
    "sklearn.linear_model._ridge.Ridge",
    "sklearn.linear_model._coordinate_descent.Lasso",
    "sklearn.linear_model._coordinate_descent.ElasticNet",
}
_SCALER = "sklearn.preprocessing._data.StandardScaler"

Kernel = Callable[[np.ndarray], "np.ndarray | None"]


def enabled() -> bool:
    """False when ``PLINTH_SERVE_SKLEARN_KERNEL`` is ``off``/``0``/``false``/``no``."""
    value = os.environ.get("PLINTH_SERVE_SKLEARN_KERNEL", "").strip().lower()
    return value not in ("off", "0", "false", "no")


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _scaler(step: Any) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    """(mean to subtract, scale to divide by) of a fitted dense StandardScaler, else None."""
    if _qualname(step) != _SCALER:
        return None
    if not hasattr(step, "n_features_in_"):  # not fitted
        return None
    mean = getattr(step, "mean_", None) if step.with_mean else None
    scale = getattr(step, "scale_", None) if step.with_std else None
    if (step.with_mean and mean is None) or (step.with_std and scale is None):
        return None
    for part in (mean, scale):
        if part is not None and (not isinstance(part, np.ndarray) or part.dtype != np.float64):
            return None
    return mean, scale


def _final(est: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The arithmetic of a known linear predictor's ``predict`` on a float64 matrix."""
    name = _qualname(est)
    coef = getattr(est, "coef_", None)
    intercept = getattr(est, "intercept_", None)
    if not isinstance(coef, np.ndarray) or coef.dtype != np.float64 or coef.ndim not in (1, 2):
        return None
    if name in _CLASSIFIERS:
        classes = getattr(est, "classes_", None)
        if not isinstance(classes, np.ndarray) or classes.dtype == object:
            return None
        coef_t = coef.T if coef.ndim == 2 else coef

        def classify(x: np.ndarray) -> np.ndarray:
            scores = x @ coef_t + intercept  # LinearClassifierMixin.decision_function
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            return classes.take(indices, axis=0)

        return classify
    if name in _REGRESSORS:
        coef_t = coef if coef.ndim == 1 else coef.T

        def regress(x: np.ndarray) -> np.ndarray:
            return x @ coef_t + intercept  # LinearModel._decision_function

        return regress
    return None


def _steps(model: Any) -> list[Any] | None:
    if _qualname(model) == "sklearn.pipeline.Pipeline":
        steps = [step for _, step in model.steps if step is not None and step != "passthrough"]
        return steps or None
    return [model]


def compile_predict(model: Any) -> Kernel | None:
    """The fused ``predict`` of ``model`` (see the module), or None when the model is not one
    this module knows or the probe batches do not give exactly scikit-learn's answers."""
    steps = _steps(model)
    if steps is None:
        return None
    scalers = [_scaler(step) for step in steps[:-1]]
    if any(s is None for s in scalers):
        return None
    final = _final(steps[-1])
    n_features = getattr(steps[0], "n_features_in_", None)  # a Pipeline led by "passthrough" has none
    if final is None or not isinstance(n_features, int) or n_features < 1:
        return None
    transforms: list[tuple[np.ndarray | None, np.ndarray | None]] = [s for s in scalers if s is not None]

    def predict(x: np.ndarray) -> np.ndarray | None:
        if (
            type(x) is not np.ndarray
            or x.dtype != np.float64
            or x.ndim != 2
            or x.shape[1] != n_features
            or not x.shape[0]
            or not np.isfinite(x).all()
        ):
            return None
        for mean, scale in transforms:  # StandardScaler.transform, on a copy as it makes one
            x = x - mean if mean is not None else x.copy()
            if scale is not None:
                x /= scale
        return final(x)

    return predict if _agrees(model, predict, transforms, n_features) else None


def _agrees(model: Any, predict: Kernel, transforms: list[Any], n_features: int) -> bool:
    """Whether ``predict`` gives scikit-learn's answers, bit for bit, on probe batches around
    the data the model was fitted on (by its first scaler's mean and scale, when it has one)."""
    import warnings

    rng = np.random.default_rng(0)
    center = np.zeros(n_features)
    spread = np.ones(n_features)
    if transforms:
        mean, scale = transforms[0]
        center = mean if mean is not None else center
        spread = scale if scale is not None else spread
    for rows in (1, 7, 64):
        probe = center + spread * rng.standard_normal((rows, n_features)) * 2
        mine = predict(probe)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # fitted with feature names, probed with an array
            theirs = np.asarray(model.predict(probe))
        if mine is None or mine.dtype != theirs.dtype or mine.shape != theirs.shape:
            return False
        if not np.array_equal(mine, theirs):
            return False
    return True

"""``plinth.autolog()``: scikit-learn, LightGBM and XGBoost training logs itself.

scikit-learn: ``fit`` logs params, the training score and metrics, and the model; later
``score`` and ``sklearn.metrics`` calls on its predictions log validation metrics.
LightGBM and XGBoost: ``lightgbm.train``, ``xgboost.train`` and their scikit-learn wrappers'
``fit`` log params, every evaluation metric per iteration (``valid_0-auc``, step =
iteration) and the model (the lightgbm / xgboost flavors of :mod:`plinth.models`).

Every estimator's ``fit`` is wrapped once. A ``fit`` called with no active run starts a
run named after the estimator and ends it afterwards; inside a run it logs to that run.
Fits that an outer fit makes (a Pipeline's steps, a search's candidates) are not logged
separately. The fitted model is stored with skops (``model/model.skops``) when skops is
installed; without it the model is skipped with a warning.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import threading
import warnings
from typing import Any

from plinth.core.errors import Conflict

log = logging.getLogger("plinth.tracking")

__all__ = ["autolog"]

_local = threading.local()
_patched: dict[tuple[Any, str], Any] = {}  # (class or module, "fit"/"train") -> the original function
_settings: dict[str, bool] = {"log_models": True, "log_training_score": True, "log_post_training_metrics": True}


def autolog(
    disable: bool = False,
    log_models: bool = True,
    log_training_score: bool = True,
    log_post_training_metrics: bool = True,
) -> None:
    """Turn autologging on (or off with ``disable=True``) for scikit-learn, LightGBM and XGBoost,
    each where it is installed.

    ``log_training_score`` logs ``training_score`` and the training metrics of a classifier or
    regressor; ``log_post_training_metrics`` logs ``estimator.score`` and ``sklearn.metrics``
    calls on a fitted estimator's predictions as ``<metric>_<dataset>`` (see
    :mod:`plinth.tracking.autolog_metrics`).

    >>> import plinth
    >>> plinth.autolog()                                    # doctest: +SKIP
    >>> LogisticRegression(C=0.5).fit(X, y)                 # doctest: +SKIP
    >>> lightgbm.train(params, train, 20, valid_sets=[valid])  # doctest: +SKIP
    """
    if disable:
        for (owner, name), original in _patched.items():
            setattr(owner, name, original)
        _patched.clear()
        return
    _settings.update(
        log_models=log_models,
        log_training_score=log_training_score,
        log_post_training_metrics=log_post_training_metrics,
    )
    found = [_patch_sklearn(), _patch_boosting("lightgbm"), _patch_boosting("xgboost")]
    if not any(found):
        raise ImportError("plinth.autolog() needs scikit-learn, LightGBM or XGBoost: pip install plinth-ml[sklearn]")


def _patch_sklearn() -> bool:
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        return False
    from plinth.tracking.autolog_metrics import patch_evaluation

    classes: dict[type, None] = {}
    for _name, estimator in all_estimators():
        for cls in estimator.__mro__:
            classes[cls] = None
            original = cls.__dict__.get("fit")
            if original is None or (cls, "fit") in _patched or getattr(original, "_plinth_autolog", False):
                continue
            _patched[(cls, "fit")] = original
            cls.fit = _wrap(original)
    if _settings["log_post_training_metrics"]:
        patch_evaluation(_patched, [cls for cls in classes if cls is not object])
    return True


# library -> (the modules that hold a `train` name, the scikit-learn wrapper base class)
_BOOSTING = {
    "lightgbm": (("lightgbm", "lightgbm.engine", "lightgbm.sklearn"), ("lightgbm.sklearn", "LGBMModel")),
    "xgboost": (("xgboost", "xgboost.training", "xgboost.sklearn"), ("xgboost.sklearn", "XGBModel")),
}


def _patch_boosting(library: str) -> bool:
    try:
        importlib.import_module(library)
    except ImportError:
        return False
    modules, (wrapper_module, wrapper_class) = _BOOSTING[library]
    for module_name in modules:
        module = importlib.import_module(module_name)
        original = module.__dict__.get("train")
        if original is None or getattr(original, "_plinth_autolog", False):
            continue
        _patched[(module, "train")] = original
        module.train = _wrap_train(library, original)  # type: ignore[attr-defined]
    module = importlib.import_module(wrapper_module)
    base = getattr(module, wrapper_class)
    for cls in [base, *_subclasses(base)]:  # XGBClassifier and others define their own fit
        original = cls.__dict__.get("fit")
        if original is not None and (cls, "fit") not in _patched and not getattr(original, "_plinth_autolog", False):
            _patched[(cls, "fit")] = original
            cls.fit = _wrap_booster_fit(original)
    return True


def _subclasses(cls: type) -> list[type]:
    out: list[type] = []
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        out += [sub, *_subclasses(sub)]
    return out


def _wrap_train(library: str, original: Any) -> Any:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        outer = getattr(_local, "booster_fit", None)
        if outer is None and getattr(_local, "depth", 0) > 0:
            return original(*args, **kwargs)  # inside a logged scikit-learn fit (a Pipeline's step)
        bound = signature.bind(*args, **kwargs)
        params = dict(bound.arguments.get("params") or {})
        rounds = signature.parameters["num_boost_round"].default
        params["num_boost_round"] = bound.arguments.get("num_boost_round", rounds)
        if outer is not None:  # a wrapper's fit: metrics and params here, the wrapper logs the model
            _add_callback(library, bound, outer, params, log_models=False)
            return original(*bound.args, **bound.kwargs)
        _local.depth = 1
        try:
            return _in_a_run(
                "Booster",
                lambda run: _train_and_log(library, original, bound, run, params),
            )
        finally:
            _local.depth = 0

    train._plinth_autolog = True  # type: ignore[attr-defined]
    return train


def _add_callback(library: str, bound: Any, run: Any, params: dict[str, Any], log_models: bool) -> None:
    from plinth.tracking import boosting

    callbacks = list(bound.arguments.get("callbacks") or [])
    if library == "lightgbm":
        boosting.log_params_quietly(run, params)
        callbacks.append(boosting.lightgbm_callback(run, log_params=False, log_models=False))
    else:
        callbacks.append(boosting.xgboost_callback(params, run, log_models=False))
    bound.arguments["callbacks"] = callbacks


def _train_and_log(library: str, original: Any, bound: Any, run: Any, params: dict[str, Any]) -> Any:
    from plinth.tracking import boosting

    _add_callback(library, bound, run, params, log_models=False)
    booster = original(*bound.args, **bound.kwargs)
    run.set_tags({"estimator_name": type(booster).__name__, "estimator_class": f"{library}.{type(booster).__name__}"})
    if _settings["log_models"]:
        boosting.log_model_quietly(run, booster)
    return booster


def _wrap_booster_fit(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "depth", 0) > 0 or getattr(_local, "booster_fit", None) is not None:
            return original(self, *args, **kwargs)

        def fit_and_log(run: Any) -> Any:
            from plinth.tracking import boosting

            cls = type(self)
            run.set_tags({"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"})
            _local.booster_fit = run
            try:
                result = original(self, *args, **kwargs)
            finally:
                _local.booster_fit = None
            if _settings["log_models"]:
                boosting.log_model_quietly(run, self)
            return result

        _local.depth = 1
        try:
            return _in_a_run(type(self).__name__, fit_and_log)
        finally:
            _local.depth = 0

    fit._plinth_autolog = True  # type: ignore[attr-defined]
    return fit


def _in_a_run(name: str, body: Any) -> Any:
    """``body(run)`` in the active run, or in a run started (and ended, failed on error) for it."""
    from plinth.tracking import sdk

    run = sdk.active_run()
    created = None
    if run is None:
        created = run = sdk.start_run(name=name)
    try:
        result = body(run)
    except BaseException as exc:
        if created is not None:
            created.__exit__(type(exc), exc, exc.__traceback__)
        raise
    if created is not None:
        created.end()
    return result


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "depth", 0) > 0:
            return original(self, *args, **kwargs)
        _local.depth = 1
        try:
            return _fit_and_log(original, self, args, kwargs)
        finally:
            _local.depth = 0

    fit._plinth_autolog = True  # type: ignore[attr-defined]
    return fit


def _fit_and_log(original: Any, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from plinth.tracking import sdk

    run = sdk.active_run()
    created = None
    if run is None:
        created = run = sdk.start_run(name=type(estimator).__name__)
    try:
        result = original(estimator, *args, **kwargs)
        _log_fit(run, estimator, args, kwargs)
    except BaseException as exc:
        if created is not None:
            created.__exit__(type(exc), exc, exc.__traceback__)
        raise
    if created is not None:
        created.end()
    return result


def _param_text(value: Any) -> str:
    from plinth.tracking.service import MAX_PARAM_VALUE

    return str(value)[:MAX_PARAM_VALUE]


def _log_fit(run: Any, estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    cls = type(estimator)
    run.set_tags({"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__qualname__}"})
    try:
        params = {k: _param_text(v) for k, v in estimator.get_params(deep=False).items()}
        run.log_params(params)
    except Conflict as exc:
        warnings.warn(f"plinth.autolog: params not logged ({exc.message}); start one run per model", stacklevel=4)
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    if _settings["log_training_score"] and X is not None and y is not None and hasattr(estimator, "score"):
        try:
            run.log_metric("training_score", float(estimator.score(X, y)))
        except Exception as exc:  # a scorer that cannot score its own training data: say so, go on
            log.warning("plinth.autolog: no training score for %s: %s", cls.__name__, exc)
        from plinth.tracking.autolog_metrics import log_training_metrics

        log_training_metrics(run, estimator, X, y)
    if _settings["log_post_training_metrics"]:
        from plinth.tracking.autolog_metrics import remember_fit

        remember_fit(estimator, run)
    if _settings["log_models"]:
        try:
            import skops.io as sio
        except ImportError:
            warnings.warn(
                "plinth.autolog: skops is not installed, so the fitted model is not logged (pip install skops)",
                stacklevel=4,
            )
            return
        try:
            run._upload(sio.dumps(estimator), "model/model.skops", "application/octet-stream")
        except Conflict as exc:  # a second model fitted in the same run: the first one stays
            warnings.warn(f"plinth.autolog: model not logged ({exc.message}); start one run per model", stacklevel=4)

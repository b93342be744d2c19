"""``plinth.autolog()``: scikit-learn's ``fit`` logs params, the training score and the model.

Every estimator's ``fit`` is wrapped once. A ``fit`` called with no active run starts a
run named after the estimator and ends it afterwards; inside a run it logs to that run.
Fits that an outer fit makes (a Pipeline's steps, a search's candidates) are not logged
separately. The fitted model is stored with skops (``model/model.skops``) when skops is
installed; without it the model is skipped with a warning.
"""

from __future__ import annotations

import functools
import logging
import threading
import warnings
from typing import Any

from plinth.core.errors import Conflict

log = logging.getLogger("plinth.tracking")

__all__ = ["autolog"]

_local = threading.local()
_patched: dict[tuple[type, str], Any] = {}  # (class, "fit") -> the original function
_settings: dict[str, bool] = {"log_models": True, "log_training_score": True}


def autolog(disable: bool = False, log_models: bool = True, log_training_score: bool = True) -> None:
    """Turn autologging for scikit-learn on (or off with ``disable=True``).

    >>> import plinth
    >>> plinth.autolog()                                    # doctest: +SKIP
    >>> LogisticRegression(C=0.5).fit(X, y)                 # doctest: +SKIP
    """
    if disable:
        for (cls, name), original in _patched.items():
            setattr(cls, name, original)
        _patched.clear()
        return
    _settings.update(log_models=log_models, log_training_score=log_training_score)
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        raise ImportError("plinth.autolog() needs scikit-learn: pip install scikit-learn") from None
    for _name, estimator in all_estimators():
        for cls in estimator.__mro__:
            original = cls.__dict__.get("fit")
            if original is None or (cls, "fit") in _patched or getattr(original, "_plinth_autolog", False):
                continue
            _patched[(cls, "fit")] = original
            cls.fit = _wrap(original)


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
    if _settings["log_models"]:
        try:
            import skops.io as sio
        except ImportError:
            warnings.warn(
                "plinth.autolog: skops is not installed, so the fitted model is not logged (pip install skops)",
                stacklevel=4,
            )
            return
        run._upload(sio.dumps(estimator), "model/model.skops", "application/octet-stream")

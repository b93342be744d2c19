"""LightGBM and XGBoost: callbacks that log params, per-iteration evaluation metrics and the model.

>>> import plinth
>>> with plinth.start_run():                                                  # doctest: +SKIP
...     lightgbm.train(params, train, 50, valid_sets=[valid],
...                    callbacks=[plinth.tracking.lightgbm_callback()])
...     xgboost.train(params, dtrain, 50, evals=[(dvalid, "valid")],
...                   callbacks=[plinth.tracking.xgboost_callback(params)])

Each evaluation result becomes the metric ``<data>-<metric>`` (``valid_0-auc``,
``validation_0-logloss``) with ``step`` = the boosting iteration. ``plinth.autolog()``
puts these callbacks into ``lightgbm.train``, ``xgboost.train`` and the scikit-learn
wrappers (``LGBMClassifier.fit``, ``XGBClassifier.fit``...) by itself.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from plinth.core.errors import Conflict

__all__ = ["lightgbm_callback", "xgboost_callback"]


def _run(run: Any) -> Any:
    if run is not None:
        return run
    from plinth.tracking import sdk

    return sdk._active()


def log_params_quietly(run: Any, params: Mapping[str, Any]) -> None:
    """Params as text; a param logged before with another value warns instead of failing training."""
    from plinth.tracking.service import MAX_PARAM_VALUE

    try:
        run.log_params({str(k): str(v)[:MAX_PARAM_VALUE] for k, v in params.items()})
    except Conflict as exc:
        warnings.warn(f"plinth: params not logged ({exc.message}); start one run per model", stacklevel=3)


def log_model_quietly(run: Any, model: Any, name: str = "model") -> None:
    """``plinth.models.log_model`` into ``run``; a model that cannot be saved warns, training goes on."""
    from plinth.models import log_model
    from plinth.tracking import sdk

    if sdk.active_run() is not run:
        warnings.warn("plinth: the model is logged only into the active run; not logged", stacklevel=3)
        return
    try:
        log_model(model, name)
    except Exception as exc:  # the metrics are what matters here; say why the model is missing
        warnings.warn(f"plinth: the model was not logged: {exc}", stacklevel=3)


class _LightGBMCallback:
    """A LightGBM callback (``callbacks=[...]``): runs after each iteration, before early stopping."""

    order = 25  # after record_evaluation (20), before early_stopping (30): the last iteration is logged
    before_iteration = False

    def __init__(self, run: Any = None, log_params: bool = True, log_models: bool = True) -> None:
        self._run = run
        self._log_params = log_params
        self._log_models = log_models

    def __call__(self, env: Any) -> None:
        run = self._run = _run(self._run)
        if self._log_params and env.iteration == env.begin_iteration:
            params = dict(env.params)
            params.setdefault("num_boost_round", env.end_iteration - env.begin_iteration)
            log_params_quietly(run, params)
        for item in env.evaluation_result_list or ():
            data_name, eval_name, value = item[0], item[1], item[2]
            run.log_metric(f"{data_name}-{eval_name}", float(value), step=env.iteration)
        if self._log_models and env.iteration + 1 == env.end_iteration:
            log_model_quietly(run, env.model)


def lightgbm_callback(run: Any = None, log_params: bool = True, log_models: bool = True) -> Any:
    """A callback for ``lightgbm.train(..., callbacks=[...])`` or ``LGBMModel.fit(callbacks=[...])``.

    Logs the training params at the first iteration, every evaluation result as
    ``<data>-<metric>`` with ``step`` = iteration, and the booster (``model/``, the
    lightgbm flavor) after the last iteration. Training stopped early by
    ``lightgbm.early_stopping`` never reaches the last iteration: log that model yourself
    (``plinth.models.log_model(booster)``) or use ``plinth.autolog()``, which does.
    ``run`` defaults to the active run when training starts.
    """
    return _LightGBMCallback(run, log_params, log_models)


def xgboost_callback(params: Mapping[str, Any] | None = None, run: Any = None, log_models: bool = True) -> Any:
    """A ``xgboost.callback.TrainingCallback`` for ``xgboost.train(..., callbacks=[...])``.

    Logs ``params`` (XGBoost does not show them to callbacks: pass the dict you train with)
    when training starts, every evaluation result as ``<data>-<metric>`` with ``step`` =
    iteration, and the booster (``model/``, the xgboost flavor) when training ends, early
    stopping included. ``run`` defaults to the active run when training starts.
    """
    import xgboost

    class XGBoostCallback(xgboost.callback.TrainingCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.run = run

        def before_training(self, model: Any) -> Any:
            self.run = _run(self.run)
            if params:
                log_params_quietly(self.run, params)
            return model

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            for data_name, metrics in evals_log.items():
                for metric_name, values in metrics.items():
                    value = values[-1]
                    if isinstance(value, tuple):  # xgboost.cv: (mean, std)
                        value = value[0]
                    self.run.log_metric(f"{data_name}-{metric_name}", float(value), step=epoch)
            return False

        def after_training(self, model: Any) -> Any:
            if log_models:
                log_model_quietly(self.run, model)
            return model

    return XGBoostCallback()

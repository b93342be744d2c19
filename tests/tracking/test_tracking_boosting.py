"""LightGBM and XGBoost: callbacks and ``plinth.autolog()`` log params, per-iteration metrics, the model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import plinth
import plinth.models
from plinth.tracking import lightgbm_callback, xgboost_callback

ROUNDS = 7


@pytest.fixture
def autologged() -> Iterator[None]:
    plinth.autolog()
    yield
    plinth.autolog(disable=True)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.3, size=200) > 0).astype(int)
    return X[:150], y[:150], X[150:], y[150:]


def _history(run_id: str, key: str) -> list[int]:
    return list(plinth.get_metric_history(run_id, key).steps)


def test_lightgbm_callback_logs_params_each_round_and_the_booster() -> None:
    import lightgbm as lgb

    X, y, Xv, yv = _data()
    params = {"objective": "binary", "metric": "auc", "learning_rate": 0.3, "num_leaves": 4, "verbose": -1}
    with plinth.start_run() as run:
        booster = lgb.train(
            params, lgb.Dataset(X, y), ROUNDS, valid_sets=[lgb.Dataset(Xv, yv)], callbacks=[lightgbm_callback()]
        )
    detail = plinth.get_run(run.id)
    assert detail.params["learning_rate"] == "0.3" and detail.params["num_leaves"] == "4"
    assert detail.params["num_boost_round"] == str(ROUNDS)
    assert _history(run.id, "valid_0-auc") == list(range(ROUNDS))
    assert 0.5 < detail.metrics["valid_0-auc"].value <= 1.0
    loaded = plinth.models.load(f"runs:/{run.id}/model")
    assert np.allclose(loaded.predict(Xv), booster.predict(Xv))


def test_xgboost_callback_logs_params_each_round_and_the_booster() -> None:
    import xgboost as xgb

    X, y, Xv, yv = _data()
    params = {"objective": "binary:logistic", "eval_metric": "auc", "max_depth": 2, "eta": 0.3}
    with plinth.start_run() as run:
        booster = xgb.train(
            params,
            xgb.DMatrix(X, y),
            ROUNDS,
            evals=[(xgb.DMatrix(X, y), "train"), (xgb.DMatrix(Xv, yv), "valid")],
            verbose_eval=False,
            callbacks=[xgboost_callback(params)],
        )
    detail = plinth.get_run(run.id)
    assert detail.params["max_depth"] == "2" and detail.params["eval_metric"] == "auc"
    assert _history(run.id, "valid-auc") == list(range(ROUNDS))
    assert _history(run.id, "train-auc") == list(range(ROUNDS))
    loaded = plinth.models.load(f"runs:/{run.id}/model")
    assert np.allclose(loaded.predict(Xv), booster.predict(xgb.DMatrix(Xv)))


@pytest.mark.filterwarnings("ignore:The argument .eval_set. is deprecated")
def test_autolog_lightgbm_train_and_classifier(autologged: None) -> None:
    import lightgbm as lgb

    X, y, Xv, yv = _data()
    params = {"objective": "binary", "metric": "binary_logloss", "num_leaves": 4, "verbose": -1}
    lgb.train(params, lgb.Dataset(X, y), ROUNDS, valid_sets=[lgb.Dataset(Xv, yv)])
    df = plinth.search_runs(filter="tags.estimator_name = 'Booster'")
    assert len(df) == 1 and df.loc[0, "status"] == "finished"
    run_id = df.loc[0, "run_id"]
    assert _history(run_id, "valid_0-binary_logloss") == list(range(ROUNDS))
    assert plinth.get_run(run_id).params["num_leaves"] == "4"
    assert {a.name for a in plinth.list_artifacts(f"runs:/{run_id}")} >= {"model/model.txt"}

    with plinth.start_run() as run:
        clf = lgb.LGBMClassifier(n_estimators=ROUNDS, num_leaves=5, verbose=-1)
        clf.fit(X, y, eval_set=[(Xv, yv)], eval_metric="auc")
    detail = plinth.get_run(run.id)
    assert detail.tags["estimator_name"] == "LGBMClassifier" and detail.params["num_leaves"] == "5"
    assert _history(run.id, "valid_0-auc") == list(range(ROUNDS))
    loaded = plinth.models.load(f"runs:/{run.id}/model")
    assert (loaded.predict(Xv) == clf.predict(Xv)).all()
    assert len(plinth.search_runs()) == 2  # the wrapper's inner train made no run of its own


def test_autolog_xgboost_train_and_classifier(autologged: None) -> None:
    import xgboost as xgb

    X, y, Xv, yv = _data()
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 2}
    xgb.train(params, xgb.DMatrix(X, y), ROUNDS, evals=[(xgb.DMatrix(Xv, yv), "valid")], verbose_eval=False)
    df = plinth.search_runs(filter="tags.estimator_name = 'Booster'")
    assert len(df) == 1 and df.loc[0, "status"] == "finished"
    run_id = df.loc[0, "run_id"]
    assert _history(run_id, "valid-logloss") == list(range(ROUNDS))
    assert plinth.get_run(run_id).params["max_depth"] == "2"
    assert plinth.get_run(run_id).params["num_boost_round"] == str(ROUNDS)

    clf = xgb.XGBClassifier(n_estimators=ROUNDS, max_depth=3, eval_metric="auc")
    clf.fit(X, y, eval_set=[(Xv, yv)], verbose=False)
    df = plinth.search_runs(filter="tags.estimator_name = 'XGBClassifier'")
    assert len(df) == 1 and df.loc[0, "status"] == "finished"
    run_id = df.loc[0, "run_id"]
    assert _history(run_id, "validation_0-auc") == list(range(ROUNDS))
    assert plinth.get_run(run_id).params["max_depth"] == "3"
    loaded = plinth.models.load(f"runs:/{run_id}/model")
    assert (loaded.predict(Xv) == clf.predict(Xv)).all()

    plinth.autolog(disable=True)
    xgb.train(params, xgb.DMatrix(X, y), 2)
    assert len(plinth.search_runs()) == 2


def test_autolog_lightgbm_with_early_stopping_logs_every_round_run_and_the_model(autologged: None) -> None:
    import lightgbm as lgb

    X, y, Xv, yv = _data()
    Xv, yv = Xv[::-1] * -1, yv[::-1]  # a validation set the model cannot fit: it stops early
    recorded: dict = {}  # type: ignore[type-arg]
    params = {"objective": "binary", "metric": "binary_logloss", "num_leaves": 4, "verbose": -1}
    with plinth.start_run() as run:
        booster = lgb.train(
            params,
            lgb.Dataset(X, y),
            100,
            valid_sets=[lgb.Dataset(Xv, yv)],
            callbacks=[lgb.early_stopping(3, verbose=False), lgb.record_evaluation(recorded)],
        )
    rounds = len(recorded["valid_0"]["binary_logloss"])
    assert rounds < 100 and booster.best_iteration > 0
    assert _history(run.id, "valid_0-binary_logloss") == list(range(rounds))
    assert {a.name for a in plinth.list_artifacts(f"runs:/{run.id}")} >= {"model/model.txt"}

"""The fused NumPy predict of linear scikit-learn models gives scikit-learn's answers, bit for
bit, and steps aside (None) wherever it could differ."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_iris, load_wine
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge, RidgeClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from plinth.models.flavors.sklearn_kernel import compile_predict


def _sklearn(model: Any, x: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(model.predict(x))


def _cases() -> list[tuple[str, Any, np.ndarray]]:
    iris_x, iris_y = load_iris(return_X_y=True)
    wine_x, wine_y = load_wine(return_X_y=True)
    diab_x, diab_y = load_diabetes(return_X_y=True)
    binary = iris_y > 0
    names = np.array(["setosa", "versicolor", "virginica"])[iris_y]
    multi_target = np.column_stack([diab_y, diab_y * 0.5 + 3])
    return [
        (
            "scaler + logistic, 3 classes",
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(iris_x, iris_y),
            iris_x,
        ),
        (
            "scaler + logistic, binary",
            make_pipeline(StandardScaler(), LogisticRegression()).fit(iris_x, binary),
            iris_x,
        ),
        ("logistic, string classes", LogisticRegression(max_iter=2000).fit(iris_x, names), iris_x),
        (
            "two scalers + ridge classifier",
            make_pipeline(StandardScaler(), StandardScaler(with_mean=False), RidgeClassifier()).fit(wine_x, wine_y),
            wine_x,
        ),
        (
            "passthrough + linear svc",
            Pipeline([("skip", "passthrough"), ("s", StandardScaler()), ("m", LinearSVC())]).fit(wine_x, wine_y),
            wine_x,
        ),
        (
            "scaler without std + linear regression",
            make_pipeline(StandardScaler(with_std=False), LinearRegression()).fit(diab_x, diab_y),
            diab_x,
        ),
        ("ridge, two targets", Ridge().fit(diab_x, multi_target), diab_x),
        ("lasso, no intercept", Lasso(alpha=0.1, fit_intercept=False).fit(diab_x, diab_y), diab_x),
        ("scaler + elastic net", make_pipeline(StandardScaler(), ElasticNet(alpha=0.05)).fit(diab_x, diab_y), diab_x),
    ]


@pytest.mark.parametrize("label", [c[0] for c in _cases()])
def test_the_kernel_answers_exactly_as_sklearn(label: str) -> None:
    _, model, x = next(c for c in _cases() if c[0] == label)
    kernel = compile_predict(model)
    assert kernel is not None, label
    rng = np.random.default_rng(7)
    for rows in (x[:1], x, x[::7] + rng.normal(0, 0.5, x[::7].shape)):
        rows = np.ascontiguousarray(rows, dtype=np.float64)
        mine, theirs = kernel(rows), _sklearn(model, rows)
        assert mine is not None
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
        assert np.array_equal(mine, theirs), label


def test_it_steps_aside_where_sklearn_would_answer_otherwise() -> None:
    iris_x, iris_y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(iris_x, iris_y)
    kernel = compile_predict(model)
    assert kernel is not None
    row = iris_x[:2].copy()
    assert kernel(row.astype(np.float32)) is None  # another dtype: scikit-learn converts it its way
    assert kernel(row[:, :3].copy()) is None  # a wrong width: scikit-learn's error
    assert kernel(row[0].copy()) is None  # 1-D
    assert kernel(np.empty((0, 4))) is None
    assert kernel(pd.DataFrame(row)) is None  # type: ignore[arg-type]
    for bad in (np.nan, np.inf):
        broken = row.copy()
        broken[1, 2] = bad
        assert kernel(broken) is None
        with pytest.raises(ValueError):  # what the caller gets instead: scikit-learn's own error
            _sklearn(model, broken)
    before = row.copy()
    kernel(row)
    assert np.array_equal(row, before)  # the caller's matrix is not scaled in place


class _Shifted(LogisticRegression):
    def predict(self, X: Any) -> Any:  # a subclass may answer otherwise: no kernel
        return super().predict(X)[::-1]


def test_models_it_does_not_know_get_no_kernel() -> None:
    iris_x, iris_y = load_iris(return_X_y=True)
    for model in (
        DecisionTreeClassifier().fit(iris_x, iris_y),
        make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=500)).fit(iris_x, iris_y),
        _Shifted(max_iter=500).fit(iris_x, iris_y),
        make_pipeline(StandardScaler(), LogisticRegression()),  # not fitted
        LogisticRegression(max_iter=500).fit(iris_x.astype(np.float32), iris_y),  # float32 coefficients
    ):
        assert compile_predict(model) is None, model


def test_a_kernel_that_disagrees_with_sklearn_on_the_probes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    iris_x, iris_y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(iris_x, iris_y)
    assert compile_predict(model) is not None
    real = model.predict
    # scikit-learn answering differently from the arithmetic (as a version that changed its
    # predict would): the probes catch it and no kernel is used
    monkeypatch.setattr(model, "predict", lambda x: (real(x) + 1) % 3)
    assert compile_predict(model) is None


def test_a_served_model_uses_it_and_the_switch_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from plinth.models import load
    from plinth.models.packaging import save_model
    from plinth.serving import ServedModel
    from plinth.serving.protocol import Columns

    frame, y = load_iris(return_X_y=True, as_frame=True)
    frame.columns = ["a", "b", "c", "d"]
    save_model(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(frame, y),
        tmp_path / "m",
        input_example=frame.head(),
    )
    rows = frame.to_numpy()[::5]
    data = Columns({c: rows[:, i].copy() for i, c in enumerate(frame.columns)}, len(rows))
    expected = load(tmp_path / "m").predict(frame.iloc[::5])  # the general path, no kernel
    for switch, used in (("", True), ("off", False)):
        monkeypatch.setenv("PLINTH_SERVE_SKLEARN_KERNEL", switch)
        served = ServedModel("m", "1", load(tmp_path / "m"))
        predictor = served.model._predictor
        assert "_kernel" in vars(predictor)  # built and checked when served, before any request
        assert (predictor.kernel() is not None) is used
        assert np.array_equal(served.call(data), expected)

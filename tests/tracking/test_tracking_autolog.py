"""``plinth.autolog()`` with scikit-learn: params, training score, model, nested fits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import plinth


@pytest.fixture
def autologged() -> Iterator[None]:
    plinth.autolog()
    yield
    plinth.autolog(disable=True)


def _data():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_fit_without_a_run_starts_one_with_params_score_and_model(autologged: None) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    model = LogisticRegression(C=0.5, max_iter=500).fit(X, y)
    df = plinth.search_runs(filter="tags.estimator_name = 'LogisticRegression'")
    assert len(df) == 1 and df.loc[0, "status"] == "finished" and df.loc[0, "name"] == "LogisticRegression"
    run = plinth.get_run(df.loc[0, "run_id"])
    assert run.params["C"] == "0.5" and run.params["max_iter"] == "500"
    assert run.tags["estimator_class"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert run.metrics["training_score"].value == pytest.approx(model.score(X, y))
    import skops.io as sio

    blob = plinth.read_artifact(f"runs:/{run.id}", "model/model.skops")
    loaded = sio.loads(blob, trusted=sio.get_untrusted_types(data=blob))
    assert (loaded.predict(X) == model.predict(X)).all()


def test_fits_inside_a_run_log_there_and_pipelines_log_once(autologged: None) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data()
    with plinth.start_run(name="mine") as run:
        make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5, random_state=0)).fit(X, y)
    detail = plinth.get_run(run.id)
    assert detail.tags["estimator_name"] == "Pipeline" and "steps" in detail.params
    assert 0.9 < detail.metrics["training_score"].value <= 1.0
    assert len(plinth.search_runs()) == 1  # the steps' fits made no runs of their own
    plinth.autolog(disable=True)
    with plinth.start_run() as plain:
        RandomForestClassifier(n_estimators=2).fit(X, y)
    assert plinth.get_run(plain.id).params == {}


def test_a_failing_fit_fails_its_run(autologged: None) -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    df = plinth.search_runs()
    assert list(df["status"]) == ["failed"]
    assert "ValueError" in (plinth.get_run(df.loc[0, "run_id"]).error or "")


def test_the_same_autologged_script_works_remotely(remote_sdk, autologged: None) -> None:  # type: ignore[no-untyped-def]
    from sklearn.tree import DecisionTreeClassifier

    X, y = _data()
    DecisionTreeClassifier(max_depth=2).fit(X, y)
    df = plinth.search_runs(filter="params.max_depth = '2'")
    assert len(df) == 1 and df.loc[0, "metrics.training_score"] > 0.9
    names = [a.name for a in plinth.list_artifacts(f"runs:/{df.loc[0, 'run_id']}")]
    assert names == ["model/model.skops"]


def test_training_metrics_by_kind_and_validation_metrics_named_by_dataset(autologged: None) -> None:
    from sklearn import metrics
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    with plinth.start_run() as run:
        model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X_train, y_train)
        preds = model.predict(X_test)
        accuracy = metrics.accuracy_score(y_test, preds)
        f1 = metrics.f1_score(y_test, y_pred=preds)
        score = model.score(X_test, y_test)
        other = X_test[:40].copy()
        X_test = other  # a new object under a name already used: a suffixed dataset
        score_2 = model.score(X_test, y_test[:40])
        metrics.accuracy_score(y_test, preds.copy())  # a copy of the predictions is not recognised
    detail = plinth.get_run(run.id)
    assert detail.tags["estimator_name"] == "Pipeline"  # f1_score's own LabelEncoder fit was not logged
    got = detail.metrics
    assert got["accuracy_score_X_test"].value == pytest.approx(accuracy)
    assert got["f1_score_X_test"].value == pytest.approx(f1)
    assert got["Pipeline_score_X_test"].value == pytest.approx(score)
    assert got["Pipeline_score_X_test-2"].value == pytest.approx(score_2)
    assert got["training_accuracy_score"].value == pytest.approx(model.score(X_train, y_train))
    assert 0.9 < got["training_roc_auc"].value <= 1.0 and got["training_log_loss"].value > 0
    assert not [k for k in got if k.startswith("accuracy_score_") and k != "accuracy_score_X_test"]

    with plinth.start_run() as reg_run:
        Ridge().fit(X_train, y_train.astype(float))
    reg = plinth.get_run(reg_run.id).metrics
    assert {"training_mean_squared_error", "training_r2_score", "training_mean_absolute_error"} <= set(reg)
    assert "training_accuracy_score" not in reg
    # available_if keeps its answer: a Ridge pipeline has no predict_proba
    assert not hasattr(make_pipeline(Ridge()), "predict_proba")


def test_validation_metrics_after_the_run_ended_are_skipped_and_disable_restores(autologged: None) -> None:
    from sklearn import metrics
    from sklearn.linear_model import LogisticRegression

    original = metrics.accuracy_score.__wrapped__
    X, y = _data()
    model = LogisticRegression(max_iter=500).fit(X, y)  # its own run, ended after the fit
    preds = model.predict(X)
    assert metrics.accuracy_score(y, preds) == pytest.approx(model.score(X, y))  # no error
    df = plinth.search_runs(filter="tags.estimator_name = 'LogisticRegression'")
    run = plinth.get_run(df.loc[0, "run_id"])
    assert not [k for k in run.metrics if k.startswith(("accuracy_score_", "LogisticRegression_score_"))]
    plinth.autolog(disable=True)
    assert metrics.accuracy_score is original
    assert not hasattr(LogisticRegression.predict, "_plinth_autolog")

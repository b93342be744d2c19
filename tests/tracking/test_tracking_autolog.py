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

"""``plinth.models`` and ``plinth.registry`` as users call them: embedded and against a server."""

from __future__ import annotations

import numpy as np
import pytest

import plinth
from models_support import iris, iris_pipeline
from plinth.core.errors import Conflict, DataCorrupted, InvalidInput, NotFound


def train_and_log(name: str = "model", **kwargs):  # type: ignore[no-untyped-def]
    X, _ = iris()
    model = iris_pipeline()
    with plinth.start_run(name="train") as run:
        plinth.log_params({"C": 1.0})
        plinth.log_metrics({"accuracy": 0.97})
        info = plinth.models.log_model(model, name, input_example=X.head(5), **kwargs)
    return model, info, run


def test_log_register_and_load_by_every_reference() -> None:
    X, _ = iris()
    model, info, run = train_and_log(registered_model_name="iris")
    assert info.uri == f"runs:/{run.id}/model" and info.flavor == "sklearn"
    assert info.registered_version.version == 1
    names = {a.name for a in plinth.list_artifacts(f"runs:/{run.id}")}
    assert {"model/plinth-model.yaml", "model/model.skops", "model/input_example.json"} <= names
    plinth.registry.set_alias("iris", "champion", 1)
    expected = model.predict(X)
    for ref in (info.uri, "models:/iris/1", "models:/iris@champion", "models:/iris@latest"):
        loaded = plinth.models.load(ref)
        assert loaded.uri == ref
        np.testing.assert_array_equal(loaded.predict(X), expected)
    with pytest.raises(InvalidInput, match="input is missing column 'petal_width' \\(expected float64\\)"):
        plinth.models.load("models:/iris@champion").predict(X.drop(columns=["petal_width"]))


def test_log_model_needs_an_active_run() -> None:
    with pytest.raises(Conflict, match="log_model needs an active run"):
        plinth.models.log_model(iris_pipeline(), "model")


def test_unknown_references() -> None:
    with pytest.raises(NotFound, match="registered model 'ghost' does not exist"):
        plinth.models.load("models:/ghost/1")
    _, info, run = train_and_log()
    with pytest.raises(NotFound, match="artifact 'other/plinth-model.yaml'"):
        plinth.models.load(f"runs:/{run.id}/other")
    with pytest.raises(InvalidInput, match="names a model, not a version"):
        plinth.models.load("models:/ghost")


def test_tampered_registered_model_is_refused_and_a_damaged_cache_is_refetched() -> None:
    X, _ = iris()
    train_and_log(registered_model_name="iris")
    loaded = plinth.models.load("models:/iris/1")
    cached = loaded.path / "requirements.txt"
    cached.write_text("evil\n")  # the local cache is ours: it is fetched again
    np.testing.assert_array_equal(plinth.models.load("models:/iris/1").predict(X.head(2)), [0, 0])
    assert "evil" not in cached.read_text()
    # swap a stored file of the version behind the registry's back
    plinth.delete_artifact("models:/iris/1", "model.skops")
    plinth.upload_artifact("models:/iris/1", "model.skops", b"PK not a model")
    import shutil

    shutil.rmtree(loaded.path)
    with pytest.raises(DataCorrupted, match="model.skops does not match the sha256 .* tampered with"):
        plinth.models.load("models:/iris/1")


def test_convert_to_onnx_registers_a_checked_sibling() -> None:
    X, _ = iris()
    model, info, _ = train_and_log(registered_model_name="iris")
    result = plinth.models.convert("models:/iris/1", to="onnx")
    assert result.check["passed"] is True and result.check["label_agreement"] == 1.0
    assert result.check["max_abs_diff_proba"] < 1e-4
    v2 = result.registered
    assert (v2.name, v2.version, v2.flavor) == ("iris", 2, "onnx")
    assert v2.tags["converted_from"] == "models:/iris/1" and v2.tags["equivalence.passed"] == "True"
    np.testing.assert_array_equal(plinth.models.load("models:/iris/2").predict(X), model.predict(X))
    with pytest.raises(InvalidInput, match="is a onnx model; converting to ONNX handles scikit-learn"):
        plinth.models.convert("models:/iris/2", to="onnx")
    with pytest.raises(InvalidInput, match="only onnx is supported"):
        plinth.models.convert("models:/iris/1", to="tflite")


def test_remote_sdk_logs_registers_approves_and_loads(remote_sdk) -> None:  # type: ignore[no-untyped-def]
    from plinth.core.context import Actor, Grant
    from plinth.governance import service as gov
    from plinth.registry import stages

    X, _ = iris()
    model, info, _ = train_and_log(registered_model_name="iris")
    assert info.registered_version.version == 1
    request = plinth.registry.request_approval("iris", 1, reason="first model")
    with pytest.raises(plinth.PermissionDenied, match="'admin' requested this approval"):
        plinth.registry.approve(request.id)
    admin = remote_sdk.platform.caller()
    admin.call(gov.create_user, name="carol")
    admin.call(gov.grant_role, user="carol", role="editor", approver=True)
    carol = Actor(name="carol", user_id="carol", grants={"default": Grant("editor", True)})
    remote_sdk.platform.caller(carol).call(stages.approve, request_id=request.id)
    plinth.registry.set_alias("iris", "champion", 1)
    assert plinth.registry.get_model("iris").production_version == 1
    loaded = plinth.models.load("models:/iris@champion")
    np.testing.assert_array_equal(loaded.predict(X.to_dict(orient="records")), model.predict(X))
    hist = plinth.registry.history("iris", at="2999-01-01T00:00Z")
    assert hist.aliases == {"champion": 1} and hist.production == [1]
    assert plinth.registry.compare_versions("iris", [1]).metrics["accuracy"] == {"1": 0.97}
    card = plinth.registry.update_card("iris", {"purpose": "Demo"}, ref="champion")
    assert card.ref == "models:/iris@champion" and card.fields == {"purpose": "Demo"}
    assert "Model card: iris v1" in plinth.registry.render_card("iris", "champion", format="html")
    with pytest.raises(NotFound, match="model 'iris' has no version 4"):
        plinth.registry.get_version("iris", 4)


def _flavored_models():  # type: ignore[no-untyped-def]
    import lightgbm
    import xgboost

    from plinth.models.conversion import to_onnx

    X, y = iris()
    yield "xgboost", xgboost.XGBClassifier(n_estimators=3, max_depth=2).fit(X, y)
    yield "lightgbm", lightgbm.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y)
    yield "onnx", to_onnx(iris_pipeline(), X.head())
    yield "python", Doubler()


class Doubler(plinth.models.PythonModel):
    def predict(self, model_input):  # type: ignore[no-untyped-def]
        return model_input.to_numpy().sum(axis=1) * 2


def test_every_flavor_through_the_registry_by_alias() -> None:
    X, _ = iris()
    for flavor, model in _flavored_models():
        name = f"iris-{flavor}"
        with plinth.start_run(name=flavor):
            info = plinth.models.log_model(model, "model", input_example=X.head(5), registered_model_name=name)
        assert info.flavor == flavor
        plinth.registry.set_alias(name, "champion", info.registered_version.version)
        loaded = plinth.models.load(f"models:/{name}@champion")
        out = loaded.predict(X.head(10))
        assert len(out) == 10, flavor
        with pytest.raises(InvalidInput, match="input is missing column 'sepal_length' \\(expected float64\\)"):
            loaded.predict(X.drop(columns=["sepal_length"]))

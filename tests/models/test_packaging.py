"""Model folders: every flavor saved and loaded back, the manifest, and what loading refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from models_support import iris, iris_pipeline
from plinth.core.errors import DataCorrupted, InvalidInput, NotFound, PermissionDenied
from plinth.models import PythonModel, load, save_model
from plinth.models.manifest import MANIFEST_NAME, Manifest, sha256_file


def test_sklearn_pipeline_roundtrip_takes_every_input_shape(tmp_path: Path) -> None:
    X, _ = iris()
    model = iris_pipeline()
    manifest = save_model(model, tmp_path / "m", input_example=X.head(5), metadata={"team": "risk"})
    assert manifest.flavor == "sklearn" and manifest.flavor_options["serialization"] == "skops"
    assert set(manifest.files) == {"model.skops", "input_example.json", "requirements.txt"}
    for name, entry in manifest.files.items():
        assert sha256_file(tmp_path / "m" / name) == entry
    assert any(r.startswith("scikit-learn==") for r in manifest.requirements)
    assert manifest.signature["outputs"] == {"kind": "tensor", "dtype": "int64", "shape": [-1]}

    loaded = load(tmp_path / "m")
    expected = model.predict(X)
    assert loaded.flavor == "sklearn" and loaded.metadata == {"team": "risk"}
    for data in (X, pa.Table.from_pandas(X), X.to_numpy(), X.to_dict(orient="records")):
        np.testing.assert_array_equal(loaded.predict(data), expected)
    assert loaded.predict_proba(X.head(2)).shape == (2, 3)
    pd.testing.assert_frame_equal(loaded.input_example, X.head(5).reset_index(drop=True))


@pytest.mark.parametrize("serialization", ["pickle", "joblib"])
def test_pickle_based_models_need_trust(tmp_path: Path, serialization: str) -> None:
    X, _ = iris()
    save_model(iris_pipeline(), tmp_path / "m", input_example=X.head(2), serialization=serialization)
    with pytest.raises(PermissionDenied, match=f"stored with {serialization}, which runs arbitrary code"):
        load(tmp_path / "m")
    assert load(tmp_path / "m", trust=True).predict(X.head(3)).shape == (3,)


def test_skops_trusts_sklearn_types_but_not_the_unsafe_ones(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    X, y = iris()
    save_model(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y), tmp_path / "rf", input_example=X)
    assert load(tmp_path / "rf").predict(X.head(2)).shape == (2,)  # Tree is scikit-learn's own
    save_model(HistGradientBoostingClassifier(max_iter=3).fit(X, y), tmp_path / "hgb", input_example=X)
    with pytest.raises(PermissionDenied, match="TreePredictor"):
        load(tmp_path / "hgb")
    assert load(tmp_path / "hgb", trust=True).predict(X.head(2)).shape == (2,)


def test_tampered_or_missing_files_are_refused(tmp_path: Path) -> None:
    X, _ = iris()
    save_model(iris_pipeline(), tmp_path / "m", input_example=X.head(2))
    (tmp_path / "m" / "requirements.txt").write_text("evil==1\n")
    with pytest.raises(DataCorrupted, match="requirements.txt does not match the sha256 .* tampered with"):
        load(tmp_path / "m")
    (tmp_path / "m" / "requirements.txt").unlink()
    with pytest.raises(DataCorrupted, match="requirements.txt is listed in plinth-model.yaml but missing"):
        load(tmp_path / "m")
    with pytest.raises(NotFound, match="plinth-model.yaml is missing"):
        load(tmp_path)


def test_a_forged_manifest_is_refused(tmp_path: Path) -> None:
    X, _ = iris()
    save_model(iris_pipeline(), tmp_path / "m", input_example=X.head(2))
    raw = json.loads(json.dumps(Manifest.read_folder(tmp_path / "m").to_dict()))
    raw["format"] = "other/9"
    (tmp_path / "m" / MANIFEST_NAME).write_text(json.dumps(raw))
    with pytest.raises(InvalidInput, match="is not a Plinth model manifest: format 'other/9'"):
        load(tmp_path / "m")


def test_xgboost_and_lightgbm_native_formats(tmp_path: Path) -> None:
    import lightgbm
    import xgboost

    X, y = iris()
    xgb = xgboost.XGBClassifier(n_estimators=4, max_depth=2).fit(X, y)
    m = save_model(xgb, tmp_path / "xgb", input_example=X.head(3))
    assert m.flavor == "xgboost" and "model.ubj" in m.files
    loaded = load(tmp_path / "xgb")
    np.testing.assert_array_equal(loaded.predict(X), xgb.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X.head(4)), xgb.predict_proba(X.head(4)), rtol=1e-6)

    lgb = lightgbm.LGBMClassifier(n_estimators=4, verbose=-1).fit(X, y)
    m = save_model(lgb, tmp_path / "lgb", input_example=X.head(3))
    assert m.flavor == "lightgbm" and "model.txt" in m.files
    loaded = load(tmp_path / "lgb")
    np.testing.assert_array_equal(loaded.predict(X), lgb.predict(X))
    reg = lightgbm.LGBMRegressor(n_estimators=4, verbose=-1).fit(X, y.astype(float))
    save_model(reg, tmp_path / "lgbr", input_example=X.head(3))
    np.testing.assert_allclose(load(tmp_path / "lgbr").predict(X), reg.predict(X), rtol=1e-6)


def test_onnx_flavor_runs_with_onnxruntime(tmp_path: Path) -> None:
    from plinth.models.conversion import to_onnx

    X, _ = iris()
    model = iris_pipeline()
    onx = to_onnx(model, X.head(5))
    m = save_model(onx, tmp_path / "onnx", input_example=X.head(3))
    assert m.flavor == "onnx"
    loaded = load(tmp_path / "onnx")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), atol=1e-5)
    with pytest.raises(InvalidInput, match="input is missing column 'petal_width'"):
        loaded.predict(X.drop(columns=["petal_width"]))


class Thresholder(PythonModel):
    """A custom model: a nested scikit-learn model, a file, and a JSON attribute."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold

    def load_context(self, context) -> None:  # type: ignore[no-untyped-def]
        self.clf = context.load_model("clf")
        self.labels = (context.artifacts["labels"]).read_text().split()

    def predict(self, model_input):  # type: ignore[no-untyped-def]
        proba = self.clf.predict_proba(model_input)
        return pd.DataFrame(
            {"label": [self.labels[i] for i in proba.argmax(axis=1)], "sure": proba.max(axis=1) >= self.threshold}
        )


def test_python_model_with_files_and_nested_models(tmp_path: Path) -> None:
    X, _ = iris()
    labels = tmp_path / "labels.txt"
    labels.write_text("setosa versicolor virginica")
    m = save_model(
        Thresholder(0.9), tmp_path / "py", input_example=X.head(3), artifacts={"clf": iris_pipeline(), "labels": labels}
    )
    assert m.flavor == "python" and "models/clf/model.skops" in m.files
    out = load(tmp_path / "py").predict(X.iloc[[0, 149]])
    assert isinstance(out, pd.DataFrame)
    assert out["label"].tolist() == ["setosa", "virginica"]
    assert m.signature["outputs"]["kind"] == "columns"


def test_python_model_shipping_code_needs_trust(tmp_path: Path) -> None:
    code = tmp_path / "src" / "shipped_double.py"
    code.parent.mkdir()
    code.write_text(
        "from plinth.models import PythonModel\n\n"
        "class Double(PythonModel):\n    def predict(self, model_input):\n        return model_input * 2\n"
    )
    import sys

    sys.path.insert(0, str(code.parent))
    try:
        from shipped_double import Double  # type: ignore[import-not-found]

        save_model(Double(), tmp_path / "m", input_example=np.ones((2, 2)), code_paths=[code])
    finally:
        sys.path.remove(str(code.parent))
        sys.modules.pop("shipped_double", None)
    with pytest.raises(PermissionDenied, match=r"ships Python code \(code/shipped_double.py\)"):
        load(tmp_path / "m")
    np.testing.assert_array_equal(load(tmp_path / "m", trust=True).predict(np.ones((1, 2))), [[2.0, 2.0]])


def test_what_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no flavor knows a builtins.object"):
        save_model(object(), tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(InvalidInput, match="exists and is not an empty folder"):
        save_model(iris_pipeline(), tmp_path / "b")
    with pytest.raises(InvalidInput, match="serialization 'yaml' is not one of"):
        save_model(iris_pipeline(), tmp_path / "c", serialization="yaml")
    assert not (tmp_path / "c").exists()  # nothing left behind


def test_skops_stays_as_strict_as_ever_for_other_callers(tmp_path: Path) -> None:
    """Plinth imports skops without its estimator scan; skops' own default list still works."""
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from plinth.models.flavors.sklearn import _skops_io\n"
        "sio = _skops_io()\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "m = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])\n"
        "data = sio.dumps(m)\n"
        "assert sio.get_untrusted_types(data=data) == [], sio.get_untrusted_types(data=data)\n"
        "sio.loads(data)\n"
        "from skops.io._general import SKLEARN_ESTIMATOR_TYPE_NAMES as names\n"
        "assert 'sklearn.pipeline.Pipeline' in names\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr

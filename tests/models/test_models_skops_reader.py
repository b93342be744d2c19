"""Plinth's own reader of plain skops files: same objects as skops, same trust rule, no skops import."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models_support import iris, iris_pipeline
from plinth.core.errors import PermissionDenied
from plinth.models import load, save_model
from plinth.models.flavors import skops_reader
from plinth.models.flavors.sklearn import _safe
from plinth.models.manifest import sha256_file


def _models() -> dict[str, object]:
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.naive_bayes import GaussianNB
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, PolynomialFeatures

    return {
        "scaler+logistic": iris_pipeline(),
        "polynomial ridge": make_pipeline(MinMaxScaler(), PolynomialFeatures(2), Ridge()),
        "pca+nb": make_pipeline(PCA(2), GaussianNB()),
        "kmeans": KMeans(3, n_init=1, random_state=0),
        # fitted on a frame: object arrays of feature names, slices, a one-hot encoder's categories
        "columns+onehot, frame": make_pipeline(
            ColumnTransformer(
                [("num", MinMaxScaler(), ["sepal_length", "sepal_width"]), ("cat", OneHotEncoder(), ["big"])]
            ),
            GaussianNB(),
        ),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_plain_models_read_without_skops_equal_what_skops_builds(tmp_path: Path, name: str) -> None:
    import skops.io as sio

    X, y = iris()
    X = X.assign(big=np.where(X["petal_length"] > 4, "yes", "no")) if "frame" in name else X.to_numpy()
    model = _models()[name].fit(X, y)  # type: ignore[attr-defined]
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    fast = skops_reader.read(path, _safe)
    assert fast is not None and type(fast) is type(model)
    reference = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    np.testing.assert_array_equal(fast.predict(X), reference.predict(X))


def test_other_node_kinds_fall_back_to_skops(tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris()
    path = tmp_path / "rf.skops"
    sio.dump(RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y), path)
    assert skops_reader.read(path, _safe) is None  # its trees use skops' own node kind
    (tmp_path / "junk.skops").write_bytes(b"not a zip")
    assert skops_reader.read(tmp_path / "junk.skops", _safe) is None


def _rewrite(path: Path, change: dict[str, str]) -> None:
    with zipfile.ZipFile(path) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    schema = json.loads(files["schema.json"])
    schema.update(change)
    files["schema.json"] = json.dumps(schema).encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n, data in files.items():
            archive.writestr(n, data)
    path.write_bytes(buffer.getvalue())


def test_an_untrusted_type_is_never_imported_and_the_load_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "plinth_evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nclass Pipeline:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    X, _ = iris()
    save_model(iris_pipeline(), tmp_path / "m", input_example=X.head(2))
    path = tmp_path / "m" / "model.skops"
    original_sha = sha256_file(path)
    _rewrite(path, {"__module__": "plinth_evil_module"})
    assert skops_reader.read(path, _safe) is None
    # the manifest's hash no longer matches, so change it the way a malicious logger would
    manifest_path = tmp_path / "m" / "plinth-model.yaml"
    new = sha256_file(path)
    text = manifest_path.read_text().replace(original_sha.sha256, new.sha256)
    manifest_path.write_text(text.replace(f"size: {original_sha.size}", f"size: {new.size}"))
    with pytest.raises(PermissionDenied, match="plinth_evil_module.Pipeline"):
        load(tmp_path / "m")
    assert not marker.exists() and "plinth_evil_module" not in sys.modules


def test_a_fresh_process_loads_a_pipeline_without_importing_skops(tmp_path: Path) -> None:
    X, _ = iris()
    model = iris_pipeline()
    save_model(model, tmp_path / "m", input_example=X.head(2))
    X.head(10).to_csv(tmp_path / "x.csv", index=False)
    code = (
        "import sys, pandas as pd\n"
        "from plinth.models import load\n"
        f"X = pd.read_csv({str(tmp_path / 'x.csv')!r})\n"
        f"print(load({str(tmp_path / 'm')!r}).predict(X).tolist())\n"
        "print('skops' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    predictions, skops_imported = out.stdout.strip().splitlines()
    assert json.loads(predictions) == model.predict(X.head(10)).tolist()
    assert skops_imported == "False"


def test_a_served_pipeline_takes_an_array_in_the_fitted_order_and_the_same_answers(tmp_path: Path) -> None:
    import warnings

    from plinth.serving import ServedModel

    X, _ = iris()
    save_model(iris_pipeline(), tmp_path / "m", input_example=X.head(2))
    model = load(tmp_path / "m")
    expected = model.predict(X)
    predictor = model._predictor
    assert predictor.array_input is False and predictor._x(X) is X  # a plain load keeps the frame
    ServedModel("iris", "1", model)  # the model server switches the array path on
    assert predictor.array_input is True
    assert isinstance(predictor._x(X), np.ndarray)
    reordered = X[list(reversed(X.columns))]
    assert predictor._x(reordered) is reordered  # not the fitted order: the frame, as it came
    with warnings.catch_warnings(record=True) as caught:  # the filters in force: the server's included
        np.testing.assert_array_equal(model.predict(X), expected)
        np.testing.assert_array_equal(model.predict(reordered), expected)
    assert not [w for w in caught if "valid feature names" in str(w.message)]
    assert model.prepare(X) is X  # the right numeric columns in order pass the signature as they are

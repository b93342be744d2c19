"""The one object ``plinth.models.load`` returns, whatever the flavor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plinth.models.manifest import Manifest
from plinth.models.signature import Signature, prepare_input

__all__ = ["LoadedModel"]


class LoadedModel:
    """A loaded model: ``predict()`` checks the input against the signature, then runs it.

    ``predict`` takes a pandas DataFrame, an Arrow table, a NumPy array or a list of dicts
    and returns a DataFrame or an array; a missing column or a wrong type raises
    :class:`~plinth.core.errors.InvalidInput` naming the column and the type expected.
    """

    def __init__(self, manifest: Manifest, predictor: Any, signature: Signature | None, uri: str, path: Path) -> None:
        self.manifest = manifest
        self.signature = signature
        self.uri = uri
        self.path = path
        self._predictor = predictor

    def __repr__(self) -> str:
        return f"LoadedModel(uri={self.uri!r}, flavor={self.flavor!r})"

    @property
    def flavor(self) -> str:
        return self.manifest.flavor

    @property
    def metadata(self) -> dict[str, Any]:
        return self.manifest.metadata

    @property
    def raw(self) -> Any:
        """The underlying model object (estimator, booster, session, PythonModel...)."""
        return self._predictor.raw

    @property
    def input_example(self) -> Any:
        from plinth.models.packaging import read_example

        name = self.manifest.input_example
        return read_example(self.path, name) if name else None

    def prepare(self, data: Any) -> Any:
        """The input as the model receives it: checked, cast and ordered by the signature."""
        return prepare_input(data, self.signature)

    def predict(self, data: Any, **params: Any) -> Any:
        result = self._predictor.predict(self.prepare(data), **params)
        return _normalise(result)

    def predict_checked(self, data: Any) -> Any:
        """``predict`` of input already checked against the signature and laid out as the
        flavor takes it (the model server's batches); the check is not repeated."""
        return _normalise(self._predictor.predict(data))

    def predict_proba(self, data: Any) -> Any:
        """Class probabilities, for classifiers whose flavor offers them."""
        return _normalise(self._predictor.predict_proba(self.prepare(data)))


def _normalise(result: Any) -> Any:
    """A DataFrame stays one; Series, lists and tensors become NumPy arrays."""
    import numpy as np
    import pandas as pd

    if isinstance(result, pd.DataFrame | np.ndarray):
        return result
    if isinstance(result, pd.Series):
        return result.to_numpy()
    if isinstance(result, list | tuple):
        if result and all(isinstance(r, dict) for r in result):
            return pd.DataFrame(list(result))
        return np.asarray(result)
    if isinstance(result, dict):
        return pd.DataFrame(result)
    return result

"""Signatures: inference from examples, and the checks ``predict()`` makes on its input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from plinth.core.errors import InvalidInput
from plinth.models.signature import ColumnSpec, Signature, TensorSpec, infer_signature, prepare_input

FRAME = pd.DataFrame({"age": [31, 40], "income": [1.5, 2.0], "plan": ["pro", "free"], "active": [True, False]})


def test_infer_columns_from_frame_records_and_arrow() -> None:
    expected = [
        ColumnSpec("age", "int64"),
        ColumnSpec("income", "float64"),
        ColumnSpec("plan", "string"),
        ColumnSpec("active", "bool"),
    ]
    assert infer_signature(FRAME).inputs == expected
    assert infer_signature(FRAME.to_dict(orient="records")).inputs == expected
    assert infer_signature(pa.Table.from_pandas(FRAME)).inputs == expected
    assert infer_signature(FRAME, np.array([0, 1])).outputs == TensorSpec("int64", (-1,))


def test_infer_tensor_from_array_keeps_inner_shape() -> None:
    sig = infer_signature(np.zeros((4, 3, 2), dtype="float32"))
    assert sig.inputs == TensorSpec("float32", (-1, 3, 2))
    assert Signature.from_dict(sig.to_dict()) == sig


def test_prepare_orders_drops_extra_and_casts_safely() -> None:
    sig = infer_signature(FRAME)
    given = pd.DataFrame(
        {"extra": [1, 2], "active": [True, True], "plan": ["a", "b"], "income": [3, 4], "age": [5.0, 6.0]}
    )
    out = prepare_input(given, sig)
    assert list(out.columns) == ["age", "income", "plan", "active"]
    assert str(out["age"].dtype) == "int64" and str(out["income"].dtype) == "float64"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (FRAME.drop(columns=["plan"]), "input is missing column 'plan' (expected string)"),
        (FRAME.assign(age=["x", "y"]), "column 'age' has type string, expected int64"),
        (FRAME.assign(age=[1.5, 2.0]), "column 'age' has type float64, expected int64 (values are not whole numbers)"),
        (FRAME.assign(age=[1, None]), "column 'age' has missing values; expected int64"),
        (FRAME.assign(income=["1", "2"]), "column 'income' has type string, expected float64"),
        (FRAME.assign(active=[1, 0]), "column 'active' has type int64, expected bool"),
    ],
)
def test_bad_columns_name_the_column_and_the_expected_type(data: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        prepare_input(data, infer_signature(FRAME))
    assert err.value.message.startswith(message)
    assert err.value.details["field"] in message


def test_array_for_columns_must_have_their_width() -> None:
    sig = Signature([ColumnSpec("a", "float64"), ColumnSpec("b", "float64")])
    out = prepare_input(np.array([[1.0, 2.0]]), sig)
    assert list(out.columns) == ["a", "b"]
    with pytest.raises(InvalidInput, match=r"shape \(1, 3\) does not fit the model's 2 columns \(a, b\)"):
        prepare_input(np.array([[1.0, 2.0, 3.0]]), sig)


def test_tensor_shape_and_dtype_checks() -> None:
    sig = Signature(TensorSpec("float32", (-1, 4)))
    assert prepare_input(np.ones((2, 4), dtype="float64"), sig).dtype == np.float32
    with pytest.raises(InvalidInput, match=r"input has shape \(2, 3\), expected \(-1, 4\)"):
        prepare_input(np.ones((2, 3)), sig)
    with pytest.raises(InvalidInput, match="input has dtype string, expected float32"):
        prepare_input(np.array([["a"] * 4]), sig)


def test_unsupported_input_and_bad_signature_dicts() -> None:
    with pytest.raises(InvalidInput, match="cannot predict on a set"):
        prepare_input({1, 2}, None)
    with pytest.raises(InvalidInput, match="type 'decimal' is not one of"):
        Signature.from_dict({"inputs": {"kind": "columns", "columns": [{"name": "a", "type": "decimal"}]}})
    with pytest.raises(InvalidInput, match="column names must be unique"):
        Signature.from_dict(
            {"inputs": {"kind": "columns", "columns": [{"name": "a", "type": "int64"}, {"name": "a", "type": "int64"}]}}
        )

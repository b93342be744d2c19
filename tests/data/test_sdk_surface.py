"""``plinth.data`` is the data area's public SDK: every name imports, and importing it
(or ``plinth``) loads none of pyarrow, DuckDB or deltalake."""

from __future__ import annotations

import subprocess
import sys

import pytest

import plinth
import plinth.data


def test_every_public_name_is_importable() -> None:
    assert plinth.data.__all__ == sorted(plinth.data.__all__)
    for name in plinth.data.__all__:
        assert getattr(plinth.data, name) is not None, name
    assert "data" in plinth.__all__ and plinth.data is plinth.__getattr__("data")
    assert plinth.data.expect.not_null("a").type == "not_null"
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        plinth.data.not_a_name  # noqa: B018


def test_importing_the_sdk_stays_light() -> None:
    probe = "print(','.join(m for m in ('pyarrow', 'duckdb', 'deltalake') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, plinth, plinth.data; {probe}"], capture_output=True, text=True
    )
    assert out.stdout.strip() == ""
    # the SDK functions need pyarrow's types; DuckDB and deltalake wait for the first call
    out = subprocess.run(
        [sys.executable, "-c", f"import sys, plinth; plinth.data.ingest; {probe}"], capture_output=True, text=True
    )
    assert out.stdout.strip() == "pyarrow"

"""The public API: every name in ``__all__`` imports, and importing stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC_PACKAGES = ["plinth", "plinth.governance", "plinth.artifacts"]


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_all_names_are_importable(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        module.not_a_name  # noqa: B018


def test_import_plinth_does_not_load_heavy_libraries() -> None:
    heavy = "('sqlalchemy', 'fastapi', 'pandas', 'torch')"
    code = f"import sys, plinth; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_does_not_load_the_stores() -> None:
    code = (
        "import sys; sys.argv=['plinth','--help']\n"
        "from plinth.cli import main\n"
        "try:\n    main.main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(m for m in ('sqlalchemy','fastapi','uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "LOADED="

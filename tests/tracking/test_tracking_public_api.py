"""The tracking area's public names: all importable, re-exported at ``plinth.*``, and light."""

from __future__ import annotations

import subprocess
import sys

import plinth
import plinth.tracking


def test_every_tracking_name_imports_and_is_re_exported() -> None:
    assert plinth.tracking.__all__ == sorted(plinth.tracking.__all__)
    for name in plinth.tracking.__all__:
        value = getattr(plinth.tracking, name)
        assert value is not None and getattr(plinth, name) is value, name
        assert name in plinth.__all__
    assert callable(plinth.autolog) and callable(plinth.start_run)


def test_the_tracking_cli_module_does_not_load_the_stores() -> None:
    code = (
        "import sys\nimport plinth.tracking.cli\n"
        "print(','.join(m for m in ('sqlalchemy', 'fastapi', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

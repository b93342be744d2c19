"""Anchor systems live in their own virtual environments, never in the project's.

``anchor_python("mlflow")`` creates ``benchmarks/.envs/mlflow`` from
``benchmarks/anchors/mlflow/requirements.txt`` on first use (and again when the file
changes), and returns that environment's python, to run anchor code in a subprocess.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).parent
ENVS = HERE / ".envs"


def requirements(name: str) -> Path:
    path = HERE / "anchors" / name / "requirements.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no anchor named {name!r}: {path} is missing")
    return path


def anchor_python(name: str) -> Path:
    req = requirements(name)
    env = ENVS / name
    python = env / "bin" / "python"
    stamp = env / ".requirements.sha256"
    digest = hashlib.sha256(req.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    print(f"[anchors] building {env} from {req} (once)", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(env)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-r", str(req)], check=True)
    stamp.write_text(digest)
    return python


def run_in_anchor(name: str, script: str, *args: str, timeout: float = 1800) -> str:
    """Run ``script`` (Python source) with the anchor's interpreter; returns its stdout."""
    out = subprocess.run(
        [str(anchor_python(name)), "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"anchor {name} failed:\n{out.stderr[-4000:]}")
    return out.stdout

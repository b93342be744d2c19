"""The registry's demo step, and the public surface of ``plinth.models`` / ``plinth.registry``."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import plinth


def test_the_demo_step_registers_approves_aliases_and_loads() -> None:
    from plinth.demo import DemoState, step_projects_and_people, step_registry

    lines: list[str] = []
    state = DemoState(echo=lines.append)
    step_projects_and_people(state)
    step_registry(state)
    model = plinth.registry.get_model("wine-classifier", project="demo")
    assert model.aliases == {"champion": 1} and model.production_version == 1
    assert model.latest_version == 2  # the ONNX sibling
    v1 = plinth.registry.get_version("wine-classifier", 1, project="demo")
    approvals = plinth.registry.list_approvals("approved", project="demo")
    assert [(a.requested_by, a.decided_by) for a in approvals] == [("local", "carol")]
    assert v1.lineage["metrics"]["accuracy"] > 0.8
    assert any("self-approval refused" in line for line in lines)
    assert state.facts["model"] == "models:/wine-classifier@champion"


@pytest.mark.parametrize("package", ["plinth.models", "plinth.registry"])
def test_public_names_import(package: str) -> None:
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    assert getattr(plinth, package.split(".")[1]) is module


def test_importing_the_packages_loads_no_ml_library_or_store() -> None:
    code = (
        "import sys, plinth, plinth.models, plinth.registry\n"
        "print(','.join(m for m in ('sklearn', 'skops', 'onnxruntime', 'sqlalchemy', 'pandas', 'numpy') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

"""The features step of ``plinth demo``, and the public surface of ``plinth.features``."""

from __future__ import annotations

import subprocess
import sys

import plinth


def test_the_demo_step_builds_a_training_set_for_a_run_and_serves_online() -> None:
    from plinth.demo import DemoState, step_features, step_projects_and_people

    lines: list[str] = []
    state = DemoState(echo=lines.append)
    step_projects_and_people(state)
    step_features(state)
    step_features(state)  # again: the repository is unchanged, a second training set version
    assert "feature repository applied: {'unchanged': 3}" in lines[-4]
    assert any("the offline join at the same time gives the same: True" in line for line in lines)
    assert state.facts["training_set"] == "datasets:/driver_ranking_train/2"
    detail = plinth.features.get_feature("driver_hourly_stats:conv_rate", project="demo")
    assert detail.usage is not None and len(detail.usage.runs) == 2
    assert detail.statistics is not None and detail.statistics["dataset"] == "datasets:/driver_stats/1"
    graph = plinth.data.lineage("datasets:/driver_ranking_train/1", project="demo")
    assert any(e.dst.startswith("runs:/") for e in graph.edges)


def test_public_names_import_and_stay_light() -> None:
    import plinth.features as pf

    assert pf.__all__ == sorted(pf.__all__) and plinth.features is pf
    for name in pf.__all__:
        assert getattr(pf, name) is not None, name
    code = (
        "import sys, plinth, plinth.features\n"
        "from plinth.features import Entity, FeatureView, Field\n"
        "heavy = ('pyarrow', 'duckdb', 'sqlalchemy', 'pandas', 'numpy', 'redis')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

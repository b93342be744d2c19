"""``plinth registry`` and ``plinth models`` as a user runs them: real processes, --json, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from models_support import iris, iris_pipeline, log_with_services
from plinth.core.platform import Platform


def plinth(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env.update(PLINTH_HOME=str(home), PLINTH_SYSTEM_METRICS="0", PLINTH_CAPTURE_ENVIRONMENT="0")
    return subprocess.run(
        [sys.executable, "-m", "plinth.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_register_alias_predict_history_card(platform: Platform, tmp_path: Path) -> None:
    X, _ = iris()
    source = log_with_services(platform, iris_pipeline(), input_example=X.head(3), metrics={"accuracy": 0.97})
    home = tmp_path / "home"
    out = plinth(home, "registry", "register", "iris", source, "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["version"] == 1
    assert plinth(home, "registry", "alias", "iris", "champion", "1").returncode == 0
    X.head(4).to_csv(tmp_path / "in.csv", index=False)
    out = plinth(home, "models", "predict", "models:/iris@champion", "--input", str(tmp_path / "in.csv"), "--json")
    assert out.returncode == 0, out.stderr
    assert [row["0"] for row in json.loads(out.stdout)] == [0, 0, 0, 0]
    X.head(2).drop(columns=["sepal_width"]).to_csv(tmp_path / "bad.csv", index=False)
    out = plinth(home, "models", "predict", "models:/iris/1", "--input", str(tmp_path / "bad.csv"))
    assert out.returncode == 2 and "input is missing column 'sepal_width' (expected float64)" in out.stderr
    out = plinth(home, "registry", "history", "iris", "--at", "2999-01-01T00:00Z", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["aliases"] == {"champion": 1}
    out = plinth(home, "models", "card", "iris@champion", "--format", "md")
    assert out.returncode == 0 and "# Model card: iris v1" in out.stdout and "accuracy" in out.stdout
    out = plinth(home, "registry", "stage", "iris", "1", "production")
    assert out.returncode == 3 and "needs an approval" in out.stderr
    out = plinth(home, "registry", "show", "ghost")
    assert out.returncode == 4 and "registered model 'ghost' does not exist" in out.stderr

"""``plinth experiments`` and ``plinth runs`` as a user runs them: real processes, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def plinth_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env["PLINTH_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "plinth.cli.main", *args], capture_output=True, text=True, env=env, timeout=60
    )


def _seed(home: Path) -> list[str]:
    script = """
import plinth
plinth.set_experiment("churn")
ids = []
for i, model in enumerate(["rf", "gbm"]):
    with plinth.start_run(name=f"run-{i}", capture_environment=False, system_metrics=False) as run:
        plinth.log_params({"model": model, "seed": 1})
        plinth.log_metric("auc", 0.8 + i / 10)
    ids.append(run.id)
print(" ".join(ids))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env["PLINTH_HOME"] = str(home)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_experiments_and_runs_commands(tmp_path: Path) -> None:
    home = tmp_path / "home"
    a, b = _seed(home)
    created = plinth_cli(home, "experiments", "create", "other", "-d", "second", "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["description"] == "second"
    listed = json.loads(plinth_cli(home, "experiments", "list", "--json").stdout)
    assert [(e["name"], e["run_count"]) for e in listed] == [("churn", 2), ("other", 0)]
    shown = plinth_cli(home, "experiments", "show", "churn")
    assert shown.returncode == 0 and "run_count" in shown.stdout
    runs = plinth_cli(home, "runs", "list", "-e", "churn", "-f", "metrics.auc > 0.85", "--json")
    assert runs.returncode == 0, runs.stderr
    rows = json.loads(runs.stdout)
    assert [r["run_id"] for r in rows] == [b] and rows[0]["params"] == {"model": "gbm", "seed": "1"}
    table = plinth_cli(home, "runs", "list", "-o", "metrics.auc")
    assert table.returncode == 0 and table.stdout.index("run-0") < table.stdout.index("run-1")
    detail = json.loads(plinth_cli(home, "runs", "show", a, "--json").stdout)
    assert detail["status"] == "finished" and detail["metrics"]["auc"]["value"] == 0.8
    cmp = json.loads(plinth_cli(home, "runs", "compare", a, b, "--json").stdout)
    assert cmp["params_differ"] == ["model"]
    assert "model *" in plinth_cli(home, "runs", "compare", a, b).stdout
    history = json.loads(plinth_cli(home, "runs", "history", a, "auc", "--json").stdout)
    assert history["values"] == [0.8]
    deleted = plinth_cli(home, "runs", "delete", a, "--json")
    assert json.loads(deleted.stdout) == {"run_id": a, "deleted": True}
    assert [r["run_id"] for r in json.loads(plinth_cli(home, "runs", "list", "--json").stdout)] == [b]
    bad = plinth_cli(home, "runs", "list", "-f", "metrics.auc >> 1")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: invalid filter at position 13") and "Traceback" not in bad.stderr
    missing = plinth_cli(home, "runs", "show", "nope")
    assert missing.returncode == 4 and missing.stderr.strip() == "error: run 'nope' does not exist"

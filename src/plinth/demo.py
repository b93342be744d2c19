"""``plinth demo``: the end-to-end story on the embedded default, step by step.

Each area adds its step to ``STEPS``; a step is a function taking the shared ``DemoState``
and printing what it did. The story ends with the server and its web UI.
"""

from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Echo = Callable[[str], None]


@dataclass
class DemoState:
    echo: Echo
    project: str = "demo"
    facts: dict[str, Any] = field(default_factory=dict)


def step_projects_and_people(state: DemoState) -> None:
    """A project, three people with different roles, and a token for CI."""
    import plinth

    existing = {p.name for p in plinth.list_projects()}
    if state.project not in existing:
        plinth.create_project(state.project, description="The end-to-end demo")
    users = {u.name for u in plinth.list_users()}
    for name, role, approver in (("alice", "editor", False), ("bob", "viewer", False), ("carol", "maintainer", True)):
        if name not in users:
            plinth.create_user(name, email=f"{name}@example.com")
        plinth.grant_role(name, role, approver=approver, project=state.project)
    token = plinth.create_token(f"ci-{int(time.time())}", user="alice", expires_in_days=30)
    state.echo(f"  project {state.project!r}: alice=editor, bob=viewer, carol=maintainer+approver")
    state.echo(f"  token for alice's CI: {token.prefix}… (secret shown once, stored as sha256)")


def step_artifacts(state: DemoState) -> None:
    """Store a file by content: a name is metadata, the bytes live under their sha256."""
    import plinth

    rng = random.Random(7)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["customer_id", "tenure_months", "monthly_charges", "churned"])
    for i in range(1000):
        tenure = rng.randint(1, 72)
        writer.writerow([i, tenure, round(rng.uniform(20, 120), 2), int(rng.random() < 0.8 / (1 + tenure / 12))])
    data = buf.getvalue().encode()
    info = plinth.upload_artifact("datasets:/churn-raw", "churn.csv", data, project=state.project)
    again = plinth.upload_artifact("datasets:/churn-raw", "churn.csv", data, project=state.project)
    assert again.sha256 == info.sha256
    state.echo(f"  stored churn.csv: {info.size} bytes, sha256 {info.sha256[:16]}… (second upload deduplicated)")
    try:
        plinth.upload_artifact("datasets:/churn-raw", "../../etc/passwd", b"x", project=state.project)
    except plinth.InvalidInput as exc:
        state.echo(f"  a path-traversal name is refused: {exc.message}")


def step_audit(state: DemoState) -> None:
    """Every change above is one hash-chained event; verify the chain."""
    import plinth

    events = plinth.list_events(project=state.project, limit=1000)
    report = plinth.verify_audit()
    state.echo(
        f"  {len(events)} events in project {state.project!r}; chain of {report.checked} events verified: {report.ok}"
    )


def step_data(state: DemoState) -> None:
    """Ingest a real dataset, version it, profile and validate it, split it reproducibly."""
    from plinth.data.demo import run_step

    run_step(state)


def step_tracking(state: DemoState) -> None:
    """Train a few models with tracking; search and compare their runs."""
    from plinth.tracking.demo import run_step

    run_step(state)


def step_registry(state: DemoState) -> None:
    """Log a model, register it, approve it as another user, alias it champion, load it."""
    from plinth.registry.demo import run_step

    run_step(state)


def step_features(state: DemoState) -> None:
    """A feature repository, a point-in-time training set for a tracked run, online serving."""
    from plinth.features.demo import run_step

    run_step(state)


def step_serving(state: DemoState) -> None:
    """A 90/10 canary with a shadow served over the Open Inference Protocol; batch and streaming inference."""
    from plinth.serving.demo import run_step

    run_step(state)


STEPS: list[tuple[str, Callable[[DemoState], None]]] = [
    ("Projects, people and tokens", step_projects_and_people),
    ("Artifacts, stored by content", step_artifacts),
    ("Datasets: versions, profiles, data quality", step_data),
    ("Experiments: train with tracking, search and compare runs", step_tracking),
    ("Features: definitions, a point-in-time training set for a run, online serving", step_features),
    ("Models: log, register, approve as another user, alias champion, load", step_registry),
    ("Serving: a canary and a shadow over the Open Inference Protocol, batch and streaming inference", step_serving),
    ("The audit trail", step_audit),
]


def run_demo(serve: bool = True, port: int = 8420, echo: Echo = print) -> DemoState:
    from plinth.core.settings import load_settings

    settings = load_settings()
    echo(f"Plinth demo on the embedded default (PLINTH_HOME={settings.home})")
    state = DemoState(echo=echo)
    for i, (title, step) in enumerate(STEPS, 1):
        echo(f"[{i}/{len(STEPS)}] {title}")
        step(state)
    echo("Demo steps done.")
    if serve:
        from plinth.server.run import serve as run_server

        echo("Starting the server with the web UI (Ctrl+C to stop)…")
        run_server(settings, port=port, echo=echo)
    return state

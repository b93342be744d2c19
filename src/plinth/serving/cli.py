"""CLI of serving: ``plinth serve`` and ``plinth deploy`` (thin: SDK calls and the server)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import typer

from plinth.cli.output import JsonOption, ProjectOption, show

deploy = typer.Typer(help="Deployments: model versions, traffic policy, replicas, status.", no_args_is_help=True)
DEPLOY_COLS = ["name", "traffic", "shadow", "sticky_key", "features", "replicas", "resources", "status", "updated_at"]
REQUESTS_HELP = "Resources asked for each replica, NAME=QUANTITY, repeatable or comma-separated: cpu=500m,memory=1Gi."
LIMITS_HELP = "Resource limits of each replica, NAME=QUANTITY: memory=2Gi,nvidia.com/gpu=1."
FEATURES_HELP = (
    "Fill the inputs a request lacks from the online store by its entity keys: features:/SERVICE or "
    "view:feature references (repeatable, or comma-separated)."
)
MISSING_HELP = "An entity with no online value: error (a 404) or null."
ModelOption = typer.Option(
    ..., "--model", "-m", help="A models:/ reference, with =WEIGHT for a canary (models:/churn/2=10). Repeatable."
)


def _traffic(models: list[str]) -> dict[str, int] | str:
    from plinth.cli.output import fail

    if len(models) == 1 and "=" not in models[0]:
        return models[0]
    out: dict[str, int] = {}
    for item in models:
        uri, sep, weight = item.rpartition("=")
        if not sep or not weight.isdigit():
            raise fail(f"{item!r}: give each model of a canary as URI=WEIGHT, e.g. models:/churn/2=10", 2)
        out[uri] = int(weight)
    return out


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(
    uris: list[str] = typer.Argument(None, help="Model references (models:/churn@champion, runs:/<id>/m), or folders."),
    deployment: str | None = typer.Option(None, "--deployment", "-d", help="Serve a deployment: its traffic policy."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    name: str | None = typer.Option(None, "--name", help="Serve the (single) model under this name."),
    max_batch_size: int = typer.Option(1024, "--max-batch-size", min=1, help="Most rows merged into one model call."),
    max_wait_ms: float = typer.Option(2.0, "--max-wait-ms", min=0, help="Longest wait for a batch to fill."),
    no_batching: bool = typer.Option(False, "--no-batching", help="Call the model once per request."),
    max_body_mb: float = typer.Option(16.0, "--max-body-mb", min=0, help="Largest request body (413 above)."),
    trust: bool = typer.Option(False, "--trust", help="Allow formats that run code when loaded. Trusted models only."),
    log_sample: float = typer.Option(
        1.0, "--log-sample", min=0, max=1, help="Share of requests written to a deployment's inference log."
    ),
    grpc_port: int | None = typer.Option(
        None, "--grpc-port", min=0, help="Also serve the v2 protocol over gRPC on this port (off when not given)."
    ),
    features: list[str] = typer.Option(
        None, "--features", help=FEATURES_HELP + " A deployment's own features are used with --deployment."
    ),
    missing_features: str = typer.Option("error", "--missing-features", help=MISSING_HELP),
    workers: int = typer.Option(
        1,
        "--workers",
        help="Server processes sharing the port (and the --grpc-port), each with its own models and batcher.",
    ),
    project: str | None = ProjectOption,
    log_level: str = typer.Option("warning", "--log-level"),
) -> None:
    """Serve models over the Open Inference Protocol (v2), over REST and optionally gRPC, and a plain JSON endpoint."""
    import uvicorn

    from plinth.cli.output import fail
    from plinth.serving import ServingOptions
    from plinth.serving.launch import ENV, ServeSpec, build_server

    if bool(uris) == bool(deployment):
        raise fail("give model references or --deployment NAME (not both)", 2)
    if name is not None and len(uris or []) != 1:
        raise fail("--name needs exactly one model", 2)
    if workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}", 2)
    from plinth.serving.http_protocol import http_protocol

    try:
        http = http_protocol()  # PLINTH_SERVE_HTTP, checked before anything loads
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    if workers > 1 and grpc_port is not None:  # the workers bind it together (SO_REUSEPORT): free it must be
        from plinth.serving.grpc_server import check_grpc_port

        check_grpc_port(host, grpc_port)
    options = ServingOptions(
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        batching=not no_batching,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        grpc_port=grpc_port,
        grpc_host=host,
        grpc_shared=workers > 1 and grpc_port is not None,
        features=tuple(features or ()),
        missing_features=missing_features,
        features_project=project,
    )
    spec = ServeSpec(tuple(uris or ()), deployment, name, trust, project, log_sample, options)
    server = build_server(spec)  # with --workers N too: bad references fail here, once, before any worker
    for route in server.models.values():
        for m in route.members:
            typer.echo(f"serving {m.name} version {m.version} ({m.uri}) at http://{host}:{port}/v2/models/{m.name}")
        if route.shadow is not None:
            typer.echo(f"shadowing {route.name} with version {route.shadow.version} ({route.shadow.uri})")
    if grpc_port is not None:
        typer.echo(f"serving the v2 protocol over gRPC at {host}:{grpc_port}")
    if server.enricher is not None:
        typer.echo(
            f"filling {', '.join(server.enricher.columns or [])} from the online store by "
            f"{', '.join(server.enricher.entity_keys or [])}"
        )
    if deployment:
        from plinth.serving import update_deployment  # the metadata store: only for a deployment

        update_deployment(deployment, status="serving", status_message=f"{host}:{port}", project=project)
    # uvicorn re-raises SIGTERM after a graceful shutdown: make it an exit that runs `finally`
    signal.signal(signal.SIGTERM, _exit)
    run: dict[str, Any] = {"host": host, "port": port, "log_level": log_level, "access_log": False, "http": http}
    try:
        if workers == 1:
            uvicorn.run(server.app, **run)
        else:  # each worker builds its own server from the spec: models, batcher, inference log
            del server
            os.environ[ENV] = spec.to_json()
            uvicorn.run("plinth.serving.launch:app_from_env", factory=True, workers=workers, **run)
    finally:
        if deployment:
            from plinth.serving import update_deployment

            update_deployment(deployment, status="stopped", status_message="", project=project)


@deploy.command("create")
def create(
    name: str,
    model: list[str] = ModelOption,
    shadow: str | None = typer.Option(None, "--shadow", help="A version to mirror requests to (never returned)."),
    replicas: int = typer.Option(1, "--replicas"),
    sticky_key: str | None = typer.Option(
        None, "--sticky-key", help="Sticky A/B: requests with the same value of this key reach the same version."
    ),
    description: str = typer.Option("", "--description"),
    features: list[str] = typer.Option(None, "--features", help=FEATURES_HELP),
    missing_features: str = typer.Option("error", "--missing-features", help=MISSING_HELP),
    requests: list[str] = typer.Option(None, "--requests", help=REQUESTS_HELP),
    limits: list[str] = typer.Option(None, "--limits", help=LIMITS_HELP),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Create a deployment: one model, or a canary (a weight per version), with an optional shadow."""
    from plinth.serving import create_deployment
    from plinth.serving.resources import merged, parse_assignments

    resources = merged(None, parse_assignments(requests, "requests"), parse_assignments(limits, "limits"))

    info = create_deployment(
        name,
        _traffic(model),
        shadow,
        replicas,
        sticky_key,
        description=description,
        features=features or None,
        missing_features=missing_features,
        resources=resources,
        project=project,
    )
    show(info, json)


@deploy.command("list")
def list_(project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """List the deployments with their traffic, shadow, replicas and status."""
    from plinth.serving import list_deployments

    show(list_deployments(project=project), json, DEPLOY_COLS, title="deployments")


@deploy.command("get")
def get(name: str, project: str | None = ProjectOption, json: bool = JsonOption) -> None:
    """Show one deployment."""
    from plinth.serving import get_deployment

    show(get_deployment(name, project=project), json)


@deploy.command("update")
def update(
    name: str,
    model: list[str] = typer.Option(None, "--model", "-m", help="New traffic: URI or URI=WEIGHT, repeatable."),
    shadow: str | None = typer.Option(None, "--shadow"),
    no_shadow: bool = typer.Option(False, "--no-shadow", help="Stop mirroring."),
    sticky_key: str | None = typer.Option(None, "--sticky-key", help="Make the split sticky by this request key."),
    no_sticky_key: bool = typer.Option(False, "--no-sticky-key", help="Back to a random split by weight."),
    replicas: int | None = typer.Option(None, "--replicas"),
    description: str | None = typer.Option(None, "--description"),
    features: list[str] = typer.Option(None, "--features", help=FEATURES_HELP),
    no_features: bool = typer.Option(False, "--no-features", help="Serve without feature enrichment."),
    missing_features: str | None = typer.Option(None, "--missing-features", help=MISSING_HELP),
    requests: list[str] = typer.Option(None, "--requests", help=REQUESTS_HELP + " Set on top of the current ones."),
    limits: list[str] = typer.Option(None, "--limits", help=LIMITS_HELP + " Set on top of the current ones."),
    no_resources: bool = typer.Option(False, "--no-resources", help="Drop the resource requests and limits."),
    project: str | None = ProjectOption,
    json: bool = JsonOption,
) -> None:
    """Change a deployment's traffic, shadow, features, resources, replicas or description."""
    from plinth.serving import get_deployment, update_deployment
    from plinth.serving.resources import merged, parse_assignments

    resources = None
    asked = parse_assignments(requests, "requests"), parse_assignments(limits, "limits")
    if any(asked) and not no_resources:
        resources = merged(get_deployment(name, project=project).resources, *asked)

    info = update_deployment(
        name,
        models=_traffic(model) if model else None,
        shadow=shadow,
        clear_shadow=no_shadow,
        replicas=replicas,
        description=description,
        sticky_key=sticky_key,
        clear_sticky_key=no_sticky_key,
        features=features or None,
        clear_features=no_features,
        missing_features=missing_features,
        resources=resources,
        clear_resources=no_resources,
        project=project,
    )
    show(info, json)


@deploy.command("delete")
def delete(name: str, project: str | None = ProjectOption) -> None:
    """Delete a deployment (running servers keep serving until stopped)."""
    from plinth.serving import delete_deployment

    delete_deployment(name, project=project)
    typer.echo(f"deleted deployment {name}")


@deploy.command("export")
def export(
    name: str,
    target: str = typer.Option(..., "--target", "-t", help="kserve (InferenceService) or kubernetes."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write the YAML here instead of stdout."),
    image: str = typer.Option("ghcr.io/plinth/plinth:latest", "--image", help="The container image to run."),
    project: str | None = ProjectOption,
) -> None:
    """Write the cluster manifests of a deployment (InferenceService, or Deployment + Service)."""
    from plinth.serving import export_manifests, get_deployment

    text = export_manifests(get_deployment(name, project=project), target, image)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(deploy, name="deploy")

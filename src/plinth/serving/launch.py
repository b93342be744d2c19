"""Building the model server that ``plinth serve`` runs, in one process or in each of N workers.

``plinth serve --workers N`` starts N server processes on one port (uvicorn's supervisor, one
shared listening socket). Each worker loads its own models and runs its own batcher: the
serve arguments travel to the workers as JSON in an environment variable, and
:func:`app_from_env` (the workers' app factory) rebuilds the same server from them.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from plinth.serving.app import ModelServer, ServingOptions

__all__ = ["ENV", "ServeSpec", "app_from_env", "build_server"]

ENV = "PLINTH_SERVE_SPEC"


@dataclass(frozen=True)
class ServeSpec:
    """What ``plinth serve`` was asked to serve, and how."""

    uris: tuple[str, ...] = ()
    deployment: str | None = None
    name: str | None = None
    trust: bool = False
    project: str | None = None
    log_sample: float = 1.0
    options: ServingOptions = field(default_factory=ServingOptions)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSpec:
        data = json.loads(text)
        options = data.pop("options")
        options["features"] = tuple(options.get("features") or ())
        return cls(**{**data, "uris": tuple(data["uris"])}, options=ServingOptions(**options))


def build_server(spec: ServeSpec) -> ModelServer:
    """Load the models of ``spec`` and build their server (not started). A deployment that fails
    to load is marked failed with the reason."""
    from plinth.serving.loading import load_deployment, load_served

    options = spec.options
    if spec.deployment:
        from plinth.core.errors import NotFound
        from plinth.serving.sdk import update_deployment

        try:
            routes: list[Any] = [load_deployment(spec.deployment, trust=spec.trust, project=spec.project)]
            options = _deployment_features(spec)
        except Exception as exc:
            if not isinstance(exc, NotFound):  # a deployment that fails to load shows it
                message = str(exc)[:2000]
                update_deployment(spec.deployment, status="failed", status_message=message, project=spec.project)
            raise
    else:
        routes = [load_served(uri, name=spec.name, trust=spec.trust, project=spec.project) for uri in spec.uris]
    inference_log = None
    if spec.deployment and spec.log_sample > 0:
        from plinth.serving.inference_log import InferenceLogger
        from plinth.serving.sdk import inference_log_location
        from plinth.store.table_store import TableStore

        location = inference_log_location(spec.deployment, project=spec.project).location
        storage = TableStore(location).storage_options
        inference_log = InferenceLogger(location, storage_options=storage, sample_rate=spec.log_sample)
    server = ModelServer(routes, options, inference_log)
    if server.enricher is not None:
        server.enricher.resolve()  # unknown features fail here, before the server starts
    server.follow(project=spec.project, trust=spec.trust, deployment=spec.deployment)  # hot swap on alias moves
    return server


def _deployment_features(spec: ServeSpec) -> ServingOptions:
    """The serving options with the features the deployment carries (``--features`` may not differ)."""
    from dataclasses import replace

    from plinth.core.errors import InvalidInput
    from plinth.serving.sdk import get_deployment

    assert spec.deployment is not None
    deployment = get_deployment(spec.deployment, project=spec.project)
    if not deployment.features:
        return spec.options
    if spec.options.features:
        raise InvalidInput(
            f"deployment {spec.deployment!r} carries its features ({', '.join(deployment.features)}): drop "
            "--features, or change them with plinth deploy update --features",
            field="features",
        )
    return replace(
        spec.options,
        features=tuple(deployment.features),
        missing_features=deployment.missing_features,
        features_project=spec.project,
    )


def app_from_env() -> Any:
    """The ASGI app of one ``--workers`` process: the server described by ``$PLINTH_SERVE_SPEC``."""
    text = os.environ.get(ENV)
    if not text:
        raise RuntimeError(f"{ENV} is not set: this factory runs inside `plinth serve --workers N`")
    return build_server(ServeSpec.from_json(text)).app

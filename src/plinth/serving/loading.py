"""Turning model references into served models: name and version from the reference."""

from __future__ import annotations

from pathlib import Path

from plinth.serving.app import Route, ServedModel

__all__ = ["load_deployment", "load_served"]


def load_served(uri: str, *, name: str | None = None, trust: bool = False, project: str | None = None) -> ServedModel:
    """Load ``uri`` once; ``models:/churn@champion`` is served as ``churn`` at the version the alias names."""
    from plinth.models import load
    from plinth.models.sdk import resolve_reference

    if ":/" not in uri:
        folder = Path(uri)
        return ServedModel(name or folder.resolve().name, "1", load(folder, trust=trust), uri)
    ref, version = resolve_reference(uri, project)
    if version is not None:
        model = load(f"models:/{version.name}/{version.version}", trust=trust, project=project)
        return ServedModel(name or version.name, str(version.version), model, uri)
    model = load(uri, trust=trust, project=project)
    return ServedModel(name or ref.version.rstrip("/").rsplit("/", 1)[-1], ref.name, model, uri)


def load_deployment(name: str, *, trust: bool = False, project: str | None = None) -> Route:
    """The route of deployment ``name``: its versions by weight, and its shadow; each loaded once."""
    from plinth.serving.sdk import get_deployment

    deployment = get_deployment(name, project=project)
    members = [load_served(t.uri, name=deployment.name, trust=trust, project=project) for t in deployment.traffic]
    shadow = None
    if deployment.shadow:
        shadow = load_served(deployment.shadow, name=deployment.name, trust=trust, project=project)
    return Route(
        deployment.name,
        members,
        [t.weight for t in deployment.traffic],
        shadow,
        deployment.sticky_key,
    )

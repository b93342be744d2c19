"""SDK functions of deployments; embedded or remote by ``PLINTH_URI``.

>>> import plinth
>>> plinth.serving.create_deployment("churn", {"models:/churn/1": 90, "models:/churn/2": 10},
...                                  shadow="models:/churn/3")  # doctest: +SKIP
"""

from __future__ import annotations

from plinth.core.ops import call
from plinth.serving import schemas as s
from plinth.serving import service as svc

__all__ = [
    "create_deployment",
    "delete_deployment",
    "get_deployment",
    "inference_log_location",
    "list_deployments",
    "update_deployment",
]


def create_deployment(
    name: str,
    models: dict[str, int] | list[str] | str,
    shadow: str | None = None,
    replicas: int = 1,
    sticky_key: str | None = None,
    description: str = "",
    project: str | None = None,
) -> s.DeploymentInfo:
    """Deploy ``models``: one reference, or a weight per reference (a canary); ``shadow`` is mirrored."""
    return call(
        s.CREATE,
        svc.create_deployment,
        project=project,
        name=name,
        models=models,
        shadow=shadow,
        replicas=replicas,
        sticky_key=sticky_key,
        description=description,
    )


def list_deployments(project: str | None = None) -> list[s.DeploymentInfo]:
    return call(s.LIST, svc.list_deployments, project=project)


def get_deployment(name: str, project: str | None = None) -> s.DeploymentInfo:
    return call(s.GET, svc.get_deployment, project=project, name=name)


def update_deployment(
    name: str,
    models: dict[str, int] | list[str] | str | None = None,
    shadow: str | None = None,
    clear_shadow: bool = False,
    replicas: int | None = None,
    status: str | None = None,
    status_message: str | None = None,
    description: str | None = None,
    sticky_key: str | None = None,
    clear_sticky_key: bool = False,
    project: str | None = None,
) -> s.DeploymentInfo:
    return call(
        s.UPDATE,
        svc.update_deployment,
        project=project,
        name=name,
        models=models,
        shadow=shadow,
        clear_shadow=clear_shadow,
        replicas=replicas,
        status=status,
        status_message=status_message,
        description=description,
        sticky_key=sticky_key,
        clear_sticky_key=clear_sticky_key,
    )


def delete_deployment(name: str, project: str | None = None) -> None:
    call(s.DELETE, svc.delete_deployment, project=project, name=name)


def inference_log_location(name: str, project: str | None = None) -> s.InferenceLogInfo:
    return call(s.INFERENCE_LOG, svc.inference_log_location, project=project, name=name)

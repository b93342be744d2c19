"""SDK functions of deployments; embedded or remote by ``PLINTH_URI``.

>>> import plinth
>>> plinth.serving.create_deployment("churn", {"models:/churn/1": 90, "models:/churn/2": 10},
...                                  shadow="models:/churn/3")  # doctest: +SKIP
"""

from __future__ import annotations

from plinth.core.ops import call
from plinth.serving import jobs
from plinth.serving import schemas as s
from plinth.serving import service as svc
from plinth.serving import stream_workers as sw

__all__ = [
    "create_deployment",
    "delete_deployment",
    "get_batch_job",
    "get_deployment",
    "get_stream_worker",
    "inference_log_location",
    "list_batch_jobs",
    "list_deployments",
    "close_stale_batch_jobs",
    "list_stream_workers",
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
    features: list[str] | str | None = None,
    missing_features: str = "error",
    resources: dict[str, dict[str, str]] | None = None,
) -> s.DeploymentInfo:
    """Deploy ``models``: one reference, or a weight per reference (a canary); ``shadow`` is mirrored;
    ``features`` (``features:/SERVICE`` or ``view:feature`` references) fill the inputs a request
    lacks from the online store; ``missing_features``: ``error`` or ``null`` for an entity without;
    ``resources``: Kubernetes requests and limits for its manifests, e.g.
    ``{"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}``."""
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
        features=features,
        missing_features=missing_features,
        resources=resources,
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
    features: list[str] | str | None = None,
    clear_features: bool = False,
    missing_features: str | None = None,
    resources: dict[str, dict[str, str]] | None = None,
    clear_resources: bool = False,
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
        features=features,
        clear_features=clear_features,
        missing_features=missing_features,
        resources=resources,
        clear_resources=clear_resources,
    )


def delete_deployment(name: str, project: str | None = None) -> None:
    call(s.DELETE, svc.delete_deployment, project=project, name=name)


def inference_log_location(name: str, project: str | None = None) -> s.InferenceLogInfo:
    return call(s.INFERENCE_LOG, svc.inference_log_location, project=project, name=name)


def list_batch_jobs(state: str | None = None, limit: int = 100, project: str | None = None) -> list[s.BatchJobInfo]:
    """Batch inference jobs, newest first (``state``: queued, running, succeeded or failed)."""
    return call(s.LIST_JOBS, jobs.list_jobs, project=project, state=state, limit=limit)


def close_stale_batch_jobs(project: str | None = None) -> list[s.BatchJobInfo]:
    """Mark failed the jobs whose runner stopped reporting (``stale``: its server died mid-job);
    the jobs closed. Admins only."""
    return call(s.CLOSE_STALE_JOBS, jobs.close_stale_jobs, project=project)


def get_batch_job(id: str, project: str | None = None) -> s.BatchJobInfo:  # noqa: A002 - the route's word
    """One batch inference job: its state, rows, output version, error and timings."""
    return call(s.GET_JOB, jobs.get_job, project=project, id=id)


def list_stream_workers(project: str | None = None) -> list[s.StreamWorkerInfo]:
    """Streaming inference workers: what each consumes, its counts, state and last heartbeat."""
    return call(s.LIST_WORKERS, sw.list_workers, project=project)


def get_stream_worker(id: str, project: str | None = None) -> s.StreamWorkerInfo:  # noqa: A002 - the route's word
    return call(s.GET_WORKER, sw.get_worker, project=project, id=id)

"""Cluster manifests of a deployment: a KServe InferenceService, or a Kubernetes Deployment and
Service running ``plinth serve --deployment``. The YAML is built as data, then dumped."""

from __future__ import annotations

from typing import Any

from plinth.core.errors import InvalidInput
from plinth.serving.schemas import DeploymentInfo

__all__ = ["TARGETS", "export_manifests"]

TARGETS = ("kserve", "kubernetes")
DEFAULT_IMAGE = "ghcr.io/plinth/plinth:latest"
PORT = 8080


def _labels(d: DeploymentInfo) -> dict[str, str]:
    return {"app.kubernetes.io/name": d.name, "app.kubernetes.io/managed-by": "plinth", "plinth.dev/project": d.project}


def _container(d: DeploymentInfo, image: str) -> dict[str, Any]:
    container = {
        "name": "plinth-serve",
        "image": image,
        "args": ["serve", "--deployment", d.name, "--project", d.project, "--host", "0.0.0.0", "--port", str(PORT)],
        "env": [
            {"name": "PLINTH_URI", "valueFrom": {"secretKeyRef": {"name": "plinth", "key": "uri"}}},
            {"name": "PLINTH_TOKEN", "valueFrom": {"secretKeyRef": {"name": "plinth", "key": "token"}}},
        ],
        "ports": [{"containerPort": PORT, "name": "http", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": PORT}},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", "port": PORT}},
    }
    if d.resources:
        container["resources"] = {k: dict(v) for k, v in d.resources.items()}
    return container


def _kserve(d: DeploymentInfo, image: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": d.name, "labels": _labels(d), "annotations": {"plinth.dev/policy": d.policy}},
            "spec": {
                "predictor": {
                    "minReplicas": d.replicas,
                    "maxReplicas": d.replicas,
                    "containers": [{**_container(d, image), "name": "kserve-container"}],
                }
            },
        }
    ]


def _kubernetes(d: DeploymentInfo, image: str) -> list[dict[str, Any]]:
    labels = _labels(d)
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": d.name, "labels": labels, "annotations": {"plinth.dev/policy": d.policy}},
            "spec": {
                "replicas": d.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": d.name}},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [_container(d, image)]}},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": d.name, "labels": labels},
            "spec": {
                "selector": {"app.kubernetes.io/name": d.name},
                "ports": [{"name": "http", "port": 80, "targetPort": PORT, "protocol": "TCP"}],
            },
        },
    ]


def export_manifests(deployment: DeploymentInfo, target: str, image: str = DEFAULT_IMAGE) -> str:
    """The YAML documents that run ``deployment`` on a cluster (``target``: kserve or kubernetes).

    The traffic policy (canary weights, shadow) is honoured inside the server, which reads
    the deployment from the platform at start; the cluster runs ``replicas`` copies of it.
    """
    import yaml

    if target not in TARGETS:
        raise InvalidInput(f"target {target!r} is not one of {', '.join(TARGETS)}", field="target")
    docs = _kserve(deployment, image) if target == "kserve" else _kubernetes(deployment, image)
    return yaml.safe_dump_all(docs, sort_keys=False)

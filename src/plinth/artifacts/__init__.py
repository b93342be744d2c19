"""Artifacts: named files owned by runs, model versions and other resources."""

from plinth.artifacts.sdk import (
    delete_artifact,
    download_artifact,
    get_artifact,
    list_artifacts,
    read_artifact,
    upload_artifact,
)

__all__ = [
    "delete_artifact",
    "download_artifact",
    "get_artifact",
    "list_artifacts",
    "read_artifact",
    "upload_artifact",
]

"""Artifacts: named files owned by runs, model versions and other resources."""

from plinth.core.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.artifacts.sdk": [
            "delete_artifact",
            "download_artifact",
            "get_artifact",
            "list_artifacts",
            "read_artifact",
            "upload_artifact",
        ],
    },
)

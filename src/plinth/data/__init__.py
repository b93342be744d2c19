"""Datasets: versioned Delta Lake tables with profiles, data quality checks and lineage.

>>> import plinth
>>> result = plinth.data.ingest("churn", "churn.csv", tags=["train-2026-11"])  # doctest: +SKIP
>>> table = plinth.data.read("datasets:/churn@train-2026-11", columns=["tenure"])  # doctest: +SKIP

Names load on first use, so ``import plinth.data`` does not import pyarrow, DuckDB or
deltalake until a function is called. ``plinth.data.expect`` builds expectations.
"""

import importlib
from typing import Any

from plinth.core.lazy import lazy_exports

_getattr, _dir, _NAMES = lazy_exports(
    __name__,
    globals(),
    {
        "plinth.data.sdk": [
            "DataQualityWarning",
            "diff",
            "get_dataset",
            "get_version",
            "ingest",
            "lineage",
            "list_datasets",
            "list_versions",
            "profile",
            "quality_results",
            "quarantine",
            "read",
            "read_batches",
            "record_lineage",
            "split",
            "tag",
            "untag",
            "validate",
        ],
        "plinth.data.schemas": ["Expectation", "ExpectationSuite"],
    },
)
_SUBMODULES = {"expect"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    return _getattr(name)


def __dir__() -> list[str]:
    return sorted(set(_dir()) | _SUBMODULES)


__all__ = sorted([*_NAMES, *_SUBMODULES])

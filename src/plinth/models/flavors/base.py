"""What every flavor's loaded model offers, and helpers the flavors share."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

from plinth.core.errors import InvalidInput


class Predictor(Protocol):
    """A loaded model, as a flavor hands it to :class:`~plinth.models.loaded.LoadedModel`."""

    raw: Any

    def predict(self, data: Any, **params: Any) -> Any: ...


def pinned(*packages: str) -> list[str]:
    """``name==version`` for each installed package (unpinned when not installed)."""
    out = []
    for package in packages:
        try:
            out.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            out.append(package)
    return out


def missing_extra(package: str, extra: str) -> InvalidInput:
    return InvalidInput(
        f"this model needs {package}, which is not installed: pip install 'plinth-ml[{extra}]'",
        package=package,
    )


def type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def module_of(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]

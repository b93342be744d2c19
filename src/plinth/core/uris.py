"""Uniform references: ``runs:/<id>/<path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>``, ``datasets:/<name>@<version|tag>``, ``features:/<service>``,
``prompts:/<name>@<alias|version>``, and the platform's own ``projects:/``, ``users:/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from plinth.core.errors import InvalidInput
from plinth.core.names import validate_artifact_name

__all__ = ["KINDS", "Reference", "parse_reference"]

KINDS = frozenset(
    {
        "runs",
        "models",
        "datasets",
        "features",
        "prompts",
        "projects",
        "users",
        "tokens",
        "experiments",
        "deployments",
        "pipelines",
        "monitors",
    }
)
_REF = re.compile(r"^(?P<kind>[a-z]+):/(?P<name>[A-Za-z0-9][A-Za-z0-9._-]{0,99})(?:(?P<sep>[@/])(?P<rest>.+))?$")


@dataclass(frozen=True)
class Reference:
    kind: str
    name: str
    version: str | None = None  # a version number, or for runs:/ the artifact path
    alias: str | None = None

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.kind}:/{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.kind}:/{self.name}/{self.version}"
        return f"{self.kind}:/{self.name}"


def parse_reference(value: str, kinds: frozenset[str] | set[str] | None = None) -> Reference:
    """Parse and validate a reference; the error names what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidInput("a reference must be a string such as 'runs:/<id>'", field="reference")
    m = _REF.match(value)
    if not m:
        raise InvalidInput(
            f"{value!r} is not a reference: expected KIND:/NAME[/VERSION|@ALIAS], e.g. models:/churn@champion",
            field="reference",
        )
    kind, name, sep, rest = m["kind"], m["name"], m["sep"], m["rest"]
    allowed = kinds or KINDS
    if kind not in allowed:
        raise InvalidInput(f"{value!r}: kind {kind!r} is not one of {', '.join(sorted(allowed))}", field="reference")
    if sep == "@":
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", rest):
            raise InvalidInput(f"{value!r}: alias or tag {rest!r} is not valid", field="reference")
        return Reference(kind, name, alias=rest)
    if sep == "/":
        if kind == "runs":  # runs:/<id>/<artifact path>
            return Reference(kind, name, version=validate_artifact_name(rest))
        if not re.match(r"^[0-9]+$", rest):
            raise InvalidInput(f"{value!r}: version {rest!r} must be a number", field="reference")
        return Reference(kind, name, version=rest)
    return Reference(kind, name)

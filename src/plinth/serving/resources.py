"""A deployment's compute resources, in Kubernetes' shape: ``{"requests": {...}, "limits": {...}}``
with quantities such as ``500m`` CPU, ``2Gi`` memory, ``1`` ``nvidia.com/gpu``.

They are checked here as Kubernetes checks them (a known section, a valid resource name, a
valid quantity, a limit no smaller than its request, whole GPUs with equal request and limit),
so a deployment that is saved also applies on a cluster; ``plinth deploy export`` writes them
into the container of the manifests.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from plinth.core.errors import InvalidInput

__all__ = ["parse_assignments", "quantity", "validate_resources"]

SECTIONS = ("requests", "limits")
# a Kubernetes resource name: cpu, memory, ephemeral-storage, or a qualified extended resource
_NAME = re.compile(r"^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^([+]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIX = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}
_INTEGER_ONLY = ("nvidia.com/gpu", "amd.com/gpu")  # extended resources: whole numbers, request == limit


def quantity(text: object, where: str) -> Decimal:
    """The value of a Kubernetes quantity (``500m`` -> 0.5, ``1Gi`` -> 1073741824); InvalidInput
    naming ``where`` otherwise."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise InvalidInput(f"{where}: a quantity is a string such as '500m', '2Gi' or '1', not {text!r}", field=where)
    raw = str(text).strip()
    found = _QUANTITY.match(raw)
    if found is None:
        raise InvalidInput(
            f"{where}: {raw!r} is not a Kubernetes quantity (a number, then m, k, M, G, Ki, Mi, Gi... if any)",
            field=where,
        )
    number, suffix = found.group(1), found.group(2) or ""
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise InvalidInput(f"{where}: {raw!r} is not a Kubernetes quantity", field=where) from None
    if suffix[:1] in ("e", "E") and suffix not in _SUFFIX:
        return value * Decimal(10) ** int(suffix[1:])
    return value * _SUFFIX[suffix]


def validate_resources(value: object) -> dict[str, dict[str, str]] | None:
    """The resources of a deployment, checked and normalised (quantities as strings); None for none."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput("resources must be {'requests': {...}, 'limits': {...}}", field="resources")
    unknown = [k for k in value if k not in SECTIONS]
    if unknown:
        raise InvalidInput(
            f"resources has no section {unknown[0]!r}: use {' and '.join(SECTIONS)}", field=f"resources.{unknown[0]}"
        )
    out: dict[str, dict[str, str]] = {}
    values: dict[str, dict[str, Decimal]] = {}
    for section in SECTIONS:
        given = value.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            raise InvalidInput(
                f"resources.{section} must map resource names to quantities", field=f"resources.{section}"
            )
        for name, amount in given.items():
            where = f"resources.{section}.{name}"
            if not isinstance(name, str) or len(name) > 253 or not _NAME.match(name):
                raise InvalidInput(
                    f"{where}: {name!r} is not a resource name (cpu, memory, nvidia.com/gpu...)", field=where
                )
            number = quantity(amount, where)
            if number < 0:
                raise InvalidInput(f"{where}: a quantity cannot be negative", field=where)
            if name in _INTEGER_ONLY and number != number.to_integral_value():
                raise InvalidInput(f"{where}: {name} comes in whole units, not {amount!r}", field=where)
            out.setdefault(section, {})[name] = str(amount).strip()
            values.setdefault(section, {})[name] = number
    requests, limits = values.get("requests", {}), values.get("limits", {})
    for name, request in requests.items():
        if name in limits and limits[name] < request:
            raise InvalidInput(
                f"resources.limits.{name} ({out['limits'][name]}) is below its request ({out['requests'][name]})",
                field=f"resources.limits.{name}",
            )
        if name in _INTEGER_ONLY and name in limits and limits[name] != request:
            raise InvalidInput(
                f"resources.{name}: a GPU's request and limit must be equal", field=f"resources.limits.{name}"
            )
    return out or None


def parse_assignments(items: list[str] | None, section: str) -> dict[str, str]:
    """``["cpu=500m", "memory=1Gi,nvidia.com/gpu=1"]`` (the CLI's ``--requests`` / ``--limits``)
    as a mapping; InvalidInput naming the malformed item."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, amount = part.partition("=")
            if not sep or not name.strip() or not amount.strip():
                raise InvalidInput(
                    f"--{section} takes NAME=QUANTITY (cpu=500m, memory=2Gi), not {part!r}", field=section
                )
            out[name.strip()] = amount.strip()
    return out


def merged(current: dict[str, Any] | None, requests: dict[str, str], limits: dict[str, str]) -> dict[str, Any] | None:
    """``current`` with the given requests and limits set (others kept)."""
    out = {k: dict(v) for k, v in (current or {}).items()}
    if requests:
        out.setdefault("requests", {}).update(requests)
    if limits:
        out.setdefault("limits", {}).update(limits)
    return out or None

"""The one error hierarchy of Plinth.

Every error a user can see is a :class:`PlinthError` with a stable ``code``. The server
maps each code to one HTTP status and the CLI maps it to one exit code, both here, once.

    PlinthError
    ├── InvalidInput        400  the request names something wrong (field, value)
    ├── Unauthenticated     401  no credentials, or malformed/expired/revoked ones
    ├── PermissionDenied    403  the caller's role does not allow the action
    ├── NotFound            404  the named resource does not exist
    ├── AlreadyExists       409  a resource with that name exists already
    ├── Conflict            409  the resource's state does not allow the change
    ├── DataCorrupted       500  stored bytes do not match their recorded hash
    └── Unavailable         503  a store or service cannot be reached

Lower-layer exceptions (SQLAlchemy, fsspec, httpx) are translated at the seam where they
are raised, so that nothing above the stores sees them.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "Conflict",
    "DataCorrupted",
    "InvalidInput",
    "NotFound",
    "PermissionDenied",
    "PlinthError",
    "Unauthenticated",
    "Unavailable",
    "error_from_payload",
]


class PlinthError(Exception):
    """Base of every error Plinth raises on purpose."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_payload(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class InvalidInput(PlinthError):
    code = "invalid_input"
    http_status = 400
    exit_code = 2


class Unauthenticated(PlinthError):
    code = "unauthenticated"
    http_status = 401
    exit_code = 3


class PermissionDenied(PlinthError):
    code = "permission_denied"
    http_status = 403
    exit_code = 3


class NotFound(PlinthError):
    code = "not_found"
    http_status = 404
    exit_code = 4


class AlreadyExists(PlinthError):
    code = "already_exists"
    http_status = 409
    exit_code = 5


class Conflict(PlinthError):
    code = "conflict"
    http_status = 409
    exit_code = 5


class DataCorrupted(PlinthError):
    code = "data_corrupted"
    http_status = 500
    exit_code = 6


class Unavailable(PlinthError):
    code = "unavailable"
    http_status = 503
    exit_code = 7


_BY_CODE: dict[str, type[PlinthError]] = {
    cls.code: cls
    for cls in (
        InvalidInput,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        Conflict,
        DataCorrupted,
        Unavailable,
    )
}


def error_from_payload(payload: Any, status: int) -> PlinthError:
    """Rebuild the error a server sent (``{"error": {...}}``) on the client side."""
    body = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(body, dict):
        return Unavailable(f"server answered HTTP {status} without a Plinth error body")
    cls = _BY_CODE.get(str(body.get("code")), PlinthError)
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    return cls(str(body.get("message", "")), **details)

"""Request and response bodies for the hot JSON routes, read and written without FastAPI's
body model and response validation.

For a route that takes large bodies (a batch of metric points), parsing with pydantic's JSON
reader and checking the few top-level fields here costs a fraction of ``json.loads`` plus a
body model; the service still validates every value. The route declares its body schema in
``openapi_extra`` so the API docs stay complete.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel
from pydantic_core import from_json

from plinth.core.errors import InvalidInput

__all__ = ["json_response", "openapi_body", "read_json_object"]


def _parse(body: bytes) -> Any:
    try:
        return from_json(body)  # NaN/Infinity literals and integers past 64 bits, as json reads them
    except ValueError:
        pass
    try:  # json decides, and says where the text goes wrong
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}", field="body") from None


async def read_json_object(request: Request, fields: Mapping[str, type | tuple[type, ...]]) -> dict[str, Any]:
    """The body as a JSON object whose keys are among ``fields``, each value of its type or null."""
    body = await request.body()
    value = _parse(body) if body else {}
    if not isinstance(value, dict):
        raise InvalidInput(f"the request body must be a JSON object, got {type(value).__name__}", field="body")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InvalidInput(
            f"unknown field(s) {', '.join(map(repr, unknown))} in the request body; expected {', '.join(fields)}",
            field=unknown[0],
        )
    for name, kind in fields.items():
        item = value.get(name)
        if item is not None and not isinstance(item, kind):
            want = " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
            raise InvalidInput(f"{name} must be {_article(want)} or null, got {type(item).__name__}", field=name)
    return value


def _article(name: str) -> str:
    words = {"list": "a list", "dict": "an object", "str": "a string", "int": "an integer", "float": "a number"}
    return " or ".join(words.get(part, part) for part in name.split(" or "))


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """The model as JSON, written by pydantic in one pass."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


def openapi_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body of a route that reads it itself."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }

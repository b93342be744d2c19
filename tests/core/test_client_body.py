"""The remote client's request bodies: encoded in one pass by pydantic, read back by the server
as the values json.dumps would have sent (NaN and ±inf, -0.0, datetimes, non-ASCII text, big
integers, None left out)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic_core import to_jsonable_python

from plinth.client.http import HttpClient
from plinth.core.ops import Operation


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def test_a_body_reaches_the_server_as_json_dumps_would_send_it() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client = HttpClient("http://plinth.test")
    client._client = httpx.Client(base_url="http://plinth.test", transport=httpx.MockTransport(answer))
    args = {
        "run_id": "r1",
        "metrics": [["loss", float("nan"), 0, None], ["auc", float("inf"), 1, 1700000000000], ["x", -0.0, 2, None]],
        "params": {
            "when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
            "text": "é😀\u2028",
            "big": 2**70,
            "tiny": 5e-324,
        },
        "tags": None,  # left out, as before
    }
    op = Operation("POST", "/api/v1/runs/{run_id}/batch")
    assert client.send(op, project="p", arguments=args) == {"ok": True}
    (request,) = seen
    assert request.url.path == "/api/v1/runs/r1/batch" and request.url.params["project"] == "p"
    assert request.headers["content-type"] == "application/json"
    body = {k: v for k, v in args.items() if k != "run_id" and v is not None}
    assert _same(json.loads(request.content), json.loads(json.dumps(to_jsonable_python(body))))

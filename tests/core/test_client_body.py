"""The remote client's request bodies: encoded in one pass by pydantic, read back by the server
as the values json.dumps would have sent (NaN and ±inf, -0.0, datetimes, non-ASCII text, big
integers, None left out)."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic_core import to_jsonable_python

from plinth.client.http import HttpClient, _query
from plinth.core.errors import Conflict, Unavailable
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
    client._fast = None  # the httpx path; the fast path is checked against a live server below
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


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, dict[str, str], bytes, int]] = []
    close_after: bool = False

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.seen.append((self.command, self.path, dict(self.headers), body, self.client_address[1]))
        if "/api/conflict" in self.path:
            out, status = b'{"error": {"code": "conflict", "message": "taken", "details": {}}}', 409
        elif "/api/empty" in self.path:
            out, status = b"", 204
        else:
            out, status = b'{"ok": true, "n": NaN}', 200
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
        self.wfile.flush()
        if self.close_after:  # like an idle keep-alive timeout: closed without a word
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[ThreadingHTTPServer, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "close_after": False})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_the_fast_path_sends_what_httpx_sends_on_one_connection(recorder) -> None:  # type: ignore[no-untyped-def]
    server, handler = recorder
    base = f"http://127.0.0.1:{server.server_address[1]}/prefix"
    client = HttpClient(base, token="s3cret")
    assert client._fast is not None
    args = {"run_id": "r 1", "metrics": [["loss", float("nan"), 0, None]], "tags": None}
    assert _same(
        client.send(Operation("POST", "/api/runs/{run_id}/batch"), project="p", arguments=args),
        {"ok": True, "n": float("nan")},
    )
    get = Operation("GET", "/api/runs")
    client.send(get, project=None, arguments={"ids": ["a", "b"], "deleted": True, "n": 3, "skip": None})
    assert client.send(Operation("DELETE", "/api/empty"), project=None, arguments={}) is None
    with pytest.raises(Conflict, match="taken"):
        client.send(Operation("POST", "/api/conflict"), project=None, arguments={"x": 1})
    (m1, p1, h1, b1, c1), (m2, p2, h2, b2, c2), (m3, *_), (m4, *_, c4) = handler.seen
    assert (m1, p1) == ("POST", "/prefix/api/runs/r%201/batch?project=p")
    assert h1["Authorization"] == "Bearer s3cret" and h1["Content-Type"] == "application/json"
    assert h1["User-Agent"] == "plinth-sdk"
    sent = json.loads(b1)
    assert sent.keys() == {"metrics"} and sent["metrics"][0][0] == "loss" and math.isnan(sent["metrics"][0][1])
    assert (m2, p2) == ("GET", "/prefix/api/runs?ids=a&ids=b&deleted=true&n=3") and b2 == b""
    assert "Content-Type" not in h2
    assert (m3, m4) == ("DELETE", "POST")
    assert c1 == c2 == c4  # one keep-alive connection (client port) for all four calls
    client.close()


def test_the_query_string_is_the_one_httpx_builds() -> None:
    params = {"a": ["x y", "é"], "b": True, "c": False, "d": 0, "e": "/&=", "f": 1.5}
    assert _query(params) == str(httpx.QueryParams(params))


def test_a_connection_the_server_closed_is_replaced(recorder) -> None:  # type: ignore[no-untyped-def]
    server, handler = recorder
    handler.close_after = True
    client = HttpClient(f"http://127.0.0.1:{server.server_address[1]}")
    op = Operation("POST", "/api/thing")
    for i in range(5):
        assert client.send(op, project=None, arguments={"i": i})["ok"] is True
    assert len(handler.seen) == 5 and len({c for *_, c in handler.seen}) == 5
    client.close()


def test_an_unreachable_server_is_reported_as_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}")
    with pytest.raises(Unavailable, match=rf"cannot reach the Plinth server at http://127.0.0.1:{port}: .*refused"):
        client.send(Operation("GET", "/api/x"), project=None, arguments={})


def test_tls_and_proxies_stay_with_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    assert HttpClient("https://plinth.example").__dict__["_fast"] is None
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "internal.example")
    assert HttpClient("http://plinth.example")._fast is None
    assert HttpClient("http://internal.example")._fast is not None

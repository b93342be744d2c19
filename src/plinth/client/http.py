"""The typed HTTP client behind the remote SDK: one place that speaks to a Plinth server."""

from __future__ import annotations

import http.client
import json
import os
import select
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic_core import from_json, to_json, to_jsonable_python

from plinth.core.errors import Unavailable, error_from_payload
from plinth.core.ops import Operation

__all__ = ["HttpClient"]

_BODY_METHODS = {"POST", "PUT", "PATCH"}


_JSON_HEADERS = {"Content-Type": "application/json"}


class _JsonConnections:
    """Keep-alive ``http.client`` connections, one per thread, for the JSON calls to a plain
    ``http://`` server with no proxy in the way: about a third of httpx's client-side cost per
    call (0.13 against 0.38 ms of CPU for a small request here), which the SDK pays on every
    remote call. Streams, uploads, TLS and proxies stay with httpx.

    A connection the server has closed while idle (uvicorn's keep-alive timeout) is noticed
    before the request is written, as urllib3 does; a request that finds its reused connection
    reset before any answer is sent once more on a new one.
    """

    def __init__(self, host: str, port: int, prefix: str, headers: dict[str, str], timeout: float) -> None:
        self.host, self.port, self.prefix, self.timeout = host, port, prefix, timeout
        self.headers = headers
        self._local = threading.local()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid != os.getpid():  # a forked child: not its socket
            conn = None
        if conn is not None and conn.sock is not None:
            readable, _, _ = select.select([conn.sock], [], [], 0)
            if readable:  # an idle keep-alive connection has nothing to say but EOF
                conn.close()
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.pid = os.getpid()
        return conn, conn.sock is not None

    def request(self, method: str, path: str, body: bytes | None, content_type: bool) -> tuple[int, bytes]:
        headers = self.headers if not content_type else {**self.headers, **_JSON_HEADERS}
        for attempt in (0, 1):
            conn, reused = self._connection()
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers)
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                if reused and attempt == 0:
                    continue  # the server closed it between our check and the request
                raise
            except BaseException:
                conn.close()
                raise
            try:
                data = response.read()
            except BaseException:
                conn.close()
                raise
            return response.status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def _fast_connections(base_url: str, headers: dict[str, str], timeout: float) -> _JsonConnections | None:
    """The JSON fast path for ``base_url``, or None where httpx must do it (TLS, a proxy)."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    proxies = urllib.request.getproxies()
    if (proxies.get("http") or proxies.get("all")) and not urllib.request.proxy_bypass(parts.hostname):
        return None
    try:
        port = parts.port or 80
    except ValueError:
        return None
    return _JsonConnections(parts.hostname, port, parts.path.rstrip("/"), headers, timeout)


def _query(params: dict[str, Any]) -> str:
    """The query string httpx would build: lists as repeated keys, booleans as true/false."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if item is None:
                text = ""
            elif item is True or item is False:
                text = "true" if item else "false"
            else:
                text = str(item)
            pairs.append((key, text))
    return urlencode(pairs)


class HttpClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "plinth-sdk"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)
        self._fast = _fast_connections(self.base_url, headers, timeout)

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def close(self) -> None:
        self._client.close()
        if self._fast is not None:
            self._fast.close()

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            _raise_error(response.status_code, response.content)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the Plinth server at {self.base_url}: {exc}") from None
        self._raise_for(response)
        return response

    def send(self, op: Operation, *, project: str | None, arguments: dict[str, Any]) -> Any:
        """Fill the route from the arguments; the rest goes as JSON body or query string."""
        args = dict(arguments)
        path = op.path
        for name in op.path_params:
            value = args.pop(name)
            path = path.replace(f"{{{name}:path}}", quote(str(value), safe="/"))
            path = path.replace(f"{{{name}}}", quote(str(value), safe=""))
        params: dict[str, Any] = {}
        if project is not None:
            params["project"] = project
        kwargs: dict[str, Any] = {}
        clean = {k: v for k, v in args.items() if v is not None}
        if op.method in _BODY_METHODS:
            # pydantic's encoder in one pass (NaN and ±inf as json.dumps writes them): about a
            # sixth of the time of to_jsonable_python then json.dumps for a batch of metric rows
            kwargs["content"] = to_json(clean, inf_nan_mode="constants")
            kwargs["headers"] = _JSON_HEADERS
        else:
            params.update({k: to_jsonable_python(v) for k, v in clean.items()})
        if self._fast is not None:
            status, content = self._send_fast(op.method, path, params, kwargs.get("content"))
        else:
            response = self.request(op.method, path, params=params, **kwargs)
            status, content = response.status_code, response.content
        if status == 204 or not content:
            return None
        return _json(content)

    def _send_fast(self, method: str, path: str, params: dict[str, Any], body: bytes | None) -> tuple[int, bytes]:
        assert self._fast is not None
        target = f"{path}?{_query(params)}" if params else path
        try:
            status, content = self._fast.request(method, target, body, body is not None)
        except (OSError, http.client.HTTPException) as exc:
            raise Unavailable(f"cannot reach the Plinth server at {self.base_url}: {exc}") from None
        if status >= 400:
            _raise_error(status, content)
        return status, content

    def upload(self, path: str, content: Iterable[bytes], params: dict[str, Any]) -> Any:
        response = self.request("PUT", path, params=params, content=content)
        return response.json()

    def download(self, path: str, params: dict[str, Any]) -> Iterator[bytes]:
        try:
            with self._client.stream("GET", path, params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    self._raise_for(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise Unavailable(f"download from {self.base_url}{path} failed: {exc}") from None


def _raise_error(status: int, content: bytes) -> None:
    """The server's error answer as the exception class it names (a body that is not JSON: by status)."""
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        payload = None
    raise error_from_payload(payload, status)


def _json(content: bytes) -> Any:
    """A response body's JSON, read by pydantic's parser: half the time json takes over a page
    of runs, with the same values (NaN literals, integers past 64 bits); a body it refuses
    (text that is not UTF-8, bad JSON) goes to json, which decides."""
    try:
        return from_json(content)
    except ValueError:
        return json.loads(content)

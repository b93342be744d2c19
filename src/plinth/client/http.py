"""The typed HTTP client behind the remote SDK: one place that speaks to a Plinth server."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
from pydantic_core import from_json, to_json, to_jsonable_python

from plinth.core.errors import Unavailable, error_from_payload
from plinth.core.ops import Operation

__all__ = ["HttpClient"]

_BODY_METHODS = {"POST", "PUT", "PATCH"}


_JSON_HEADERS = {"Content-Type": "application/json"}


class HttpClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"User-Agent": "plinth-sdk"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def _raise_for(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        try:
            payload = response.json()
        except ValueError:
            payload = None
        raise error_from_payload(payload, response.status_code)

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
        response = self.request(op.method, path, params=params, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return _json(response.content)

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


def _json(content: bytes) -> Any:
    """A response body's JSON, read by pydantic's parser: half the time json takes over a page
    of runs, with the same values (NaN literals, integers past 64 bits); a body it refuses
    (text that is not UTF-8, bad JSON) goes to json, which decides."""
    try:
        return from_json(content)
    except ValueError:
        return json.loads(content)

"""uvicorn's httptools protocol, answering a response in one socket write instead of two.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start`` and its body when the app sends ``http.response.body``: two
``send()`` calls, two TCP segments over loopback, two wake-ups of the client. On a small
answer (an inference result is a few hundred bytes) the second segment costs about as much
as the work of the request. :class:`CoalescingHttpToolsProtocol` hands uvicorn a transport
that holds a header block until the next write and sends both together; if no write follows
before the event loop turns (a streaming response that awaits between its start and its
first chunk), the held bytes go out on their own, in order, one loop turn later. Every other
transport call first sends what is held.

``plinth serve`` runs with it where httptools is installed (uvicorn's own choice of protocol
otherwise); ``PLINTH_SERVE_HTTP=httptools`` (or ``h11``, ``auto``) picks uvicorn's protocol
instead.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

__all__ = ["CoalescingTransport", "http_protocol"]

_STATUS_LINE = b"HTTP/1.1 "
_END_OF_HEADERS = b"\r\n\r\n"


class CoalescingTransport:
    """A transport that sends a header block together with the write after it."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif isinstance(data, bytes) and data.startswith(_STATUS_LINE) and data.endswith(_END_OF_HEADERS):
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Send what is held, if anything."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def writelines(self, chunks: Any) -> None:
        self.flush()
        self._transport.writelines(chunks)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, is_closing, pause_reading, ...
        return getattr(self._transport, name)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is not installed
    HttpToolsProtocol = None


if HttpToolsProtocol is not None:

    class CoalescingHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]


def http_protocol() -> Any:
    """The protocol ``plinth serve`` gives uvicorn: a class, or a uvicorn name (``auto``...)."""
    choice = os.environ.get("PLINTH_SERVE_HTTP", "").strip().lower()
    if choice in ("auto", "h11", "httptools"):
        return choice
    if choice and choice != "coalescing":
        raise ValueError(f"PLINTH_SERVE_HTTP must be coalescing, httptools, h11 or auto, got {choice!r}")
    if HttpToolsProtocol is None:
        return "auto"  # uvicorn's own choice (h11)
    return CoalescingHttpToolsProtocol

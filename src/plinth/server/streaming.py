"""Streaming request bodies into synchronous service calls, without buffering them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from fastapi import Request

T = TypeVar("T")


async def with_request_body(request: Request, work: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``work(chunks)`` in a worker thread, where ``chunks`` yields the request body as it
    arrives. A broken upload raises inside ``work``, so its transaction rolls back."""
    from anyio import from_thread, to_thread

    def chunks() -> Iterator[bytes]:
        stream = request.stream().__aiter__()
        while True:
            try:
                yield from_thread.run(stream.__anext__)
            except StopAsyncIteration:
                return

    return await to_thread.run_sync(lambda: work(chunks()))

"""Adaptive micro-batching: concurrent requests to one model are merged into one call.

A batch closes when it holds ``max_batch_size`` rows, ``max_wait_ms`` after its first request,
or as soon as no other request is ready to join it and it has as many requests as the last
batch had, whichever comes first. A lone request runs at once; under a steady load of N callers
batches hold N requests; while the model runs, the requests that arrive form the next batch.
Each request keeps its own rows together: one is never split across calls, one larger than
the maximum runs alone, and the merged answer is cut back at the same offsets. A merged call
that fails is retried request by request, so a bad row set fails only its own request.

Where a call runs: on a worker thread at first; a model whose calls take under
``inline_below_ms`` (an average of the recent ones) is then called on the event loop itself,
which saves the thread hand-off and the contention for the GIL (a small scikit-learn pipeline
takes well under a millisecond per batch); one that gets slower goes back to the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MicroBatcher"]

_YIELDS = 2  # event-loop turns a batch waits for requests already read to reach it


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(slots=True)
class _Pending:
    data: Any
    rows: int
    future: asyncio.Future[Any] = field(repr=False)


def _concat(parts: list[Any], columns: Callable[[Any], Any]) -> Any:
    """The model input of a merged batch: v2 columns are concatenated as NumPy arrays and
    handed to ``columns`` (by default they become ONE DataFrame); frames are concatenated;
    arrays are stacked."""
    import numpy as np
    import pandas as pd

    from plinth.serving.protocol import Columns, frame_of

    if all(isinstance(p, Columns) for p in parts):
        names = parts[0].names
        if all(p.names == names for p in parts):
            return columns(Columns.merge(parts))
    if any(isinstance(p, Columns | pd.DataFrame) for p in parts):
        return pd.concat([frame_of(p) for p in parts], ignore_index=True)
    return np.concatenate(parts, axis=0)


def _frame_of(data: Any) -> Any:
    from plinth.serving.protocol import frame_of

    return frame_of(data)


def _alone(data: Any, columns: Callable[[Any], Any]) -> Any:
    from plinth.serving.protocol import Columns

    return columns(data) if isinstance(data, Columns) else data


def _is_frame(result: Any) -> bool:
    import pandas as pd

    return isinstance(result, pd.DataFrame)


def _view(result: Any, start: int, stop: int) -> Any:
    return result[start:stop]


def _slice(result: Any, start: int, stop: int) -> Any:
    import pandas as pd

    if isinstance(result, pd.DataFrame):
        return result.iloc[start:stop].reset_index(drop=True)
    return result[start:stop]


class MicroBatcher:
    """Merges concurrent ``submit()`` calls into batched calls of ``predict``.

    >>> batcher = MicroBatcher(model.predict, max_batch_size=64, max_wait_ms=2)  # doctest: +SKIP
    >>> await batcher.submit(frame, rows=len(frame))  # doctest: +SKIP
    """

    def __init__(
        self,
        predict: Callable[[Any], Any],
        *,
        max_batch_size: int = 1024,
        max_wait_ms: float = 2.0,
        on_batch: Callable[[int], None] | None = None,
        inline_below_ms: float = 2.0,
        columns: Callable[[Any], Any] | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.predict = predict
        # how decoded v2 columns (one request's, or a merged batch's) become the model's input
        self.columns = columns or _frame_of
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.on_batch = on_batch
        self._pending: deque[_Pending] = deque()
        self._arrived: asyncio.Future[None] | None = None  # set by submit() while the collector waits
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._busy = False
        self._expected = 1  # requests the next batch waits for: as many as the last one had
        self.inline_below_s = inline_below_ms / 1000
        self.cost_s: float | None = None  # a moving average of a call's seconds; None before the first

    def __repr__(self) -> str:
        return f"MicroBatcher(max_batch_size={self.max_batch_size}, max_wait_ms={self.max_wait_ms})"

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._pending)

    def start(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plinth-batch")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=False)

    async def submit(self, data: Any, rows: int) -> Any:
        """The prediction for ``data`` (``rows`` rows), computed in a batch with others."""
        if self._task is None:
            self.start()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(data, rows, future))
        if self._arrived is not None and not self._arrived.done():
            self._arrived.set_result(None)
        return await future

    async def _next(self, timeout: float | None = None) -> bool:
        """Wait until a request is waiting (True) or ``timeout`` seconds have passed (False)."""
        loop = asyncio.get_running_loop()
        while not self._pending:
            self._arrived = arrived = loop.create_future()
            timer = loop.call_later(timeout, _settle, arrived) if timeout is not None else None
            try:
                await arrived
            finally:
                self._arrived = None
                if timer is not None:
                    timer.cancel()
            if timeout is not None:
                break
        return bool(self._pending)

    async def _collect(self) -> list[_Pending]:
        loop = asyncio.get_running_loop()
        await self._next()
        self._busy = True
        first = self._pending.popleft()
        batch, rows = [first], first.rows
        deadline = loop.time() + self.max_wait_ms / 1000
        while rows < self.max_batch_size:
            if not self._pending:
                if loop.time() >= deadline:
                    break
                # let the event loop hand over the requests it has already read; then wait (up to
                # max_wait_ms) only for as many requests as the last batch had: a lone client never
                # waits, and a steady load of N callers gets batches of N
                for _ in range(_YIELDS):
                    await asyncio.sleep(0)
                if not self._pending and (len(batch) >= self._expected or not await self._next(deadline - loop.time())):
                    break
            nxt = self._pending[0]
            if rows + nxt.rows > self.max_batch_size:
                break  # it would overflow this batch: it opens the next one
            batch.append(self._pending.popleft())
            rows += nxt.rows
        self._expected = len(batch)
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            try:
                await self._execute(batch)
            finally:
                self._busy = False

    async def drain(self) -> None:
        """Return once every request submitted so far has its answer."""
        while self.depth or self._busy:
            await asyncio.sleep(0.002)

    async def _execute(self, batch: list[_Pending]) -> None:
        batch = [p for p in batch if not p.future.done()]  # a caller that went away
        if not batch:
            return
        if self.on_batch is not None:
            self.on_batch(sum(p.rows for p in batch))
        if len(batch) == 1:
            await self._run_alone(batch[0])
            return
        try:
            merged = _concat([p.data for p in batch], self.columns)
            result = await self._call(merged)
            if len(result) != len(merged):
                raise RuntimeError(f"the model returned {len(result)} rows for {len(merged)}")
        except Exception:
            for p in batch:  # isolate the failure: each request on its own
                await self._run_alone(p)
            return
        cut = _slice if _is_frame(result) else _view  # decided once per batch, not per request
        offset = 0
        for p in batch:
            if not p.future.done():
                p.future.set_result(cut(result, offset, offset + p.rows))
            offset += p.rows

    @property
    def inline(self) -> bool:
        """Whether the next call runs on the event loop (a model known to be quick)."""
        return self.cost_s is not None and self.cost_s < self.inline_below_s

    def _timed(self, data: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.predict(data)
        finally:
            took = time.perf_counter() - start
            self.cost_s = took if self.cost_s is None else 0.8 * self.cost_s + 0.2 * took

    async def _call(self, data: Any) -> Any:
        if self.inline:
            return self._timed(data)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._timed, data)

    async def _run_alone(self, p: _Pending) -> None:
        try:
            result = await self._call(_alone(p.data, self.columns))
        except Exception as exc:
            if not p.future.done():
                p.future.set_exception(exc)
            return
        if not p.future.done():
            p.future.set_result(result)

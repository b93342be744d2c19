"""The metric buffer: ``log_metric`` returns at once; a background thread stores in batches.

Points wait in memory (at most ``max_points``, plus the batch being stored: a full
buffer makes the caller wait for the flusher, so memory stays bounded) and are sent when ``batch_size`` have gathered,
every ``interval`` seconds, on :meth:`MetricBuffer.flush` (a run's end calls it), and at
interpreter exit. A batch that cannot be stored is kept as the error of its run and
raised by the next ``flush`` of that run, so a failure is never silent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("plinth.tracking")

# (run_id, project, key, value, step, timestamp_ms)
Point = tuple[str, str | None, str, float, int, int]
Sender = Callable[[str, str | None, list[tuple[str, Any, int, int]]], None]


class MetricBuffer:
    def __init__(
        self,
        send: Sender,
        *,
        batch_size: int = 1000,
        max_points: int = 100_000,
        interval: float = 1.0,
        max_request: int = 10_000,
    ) -> None:
        self._send = send
        self.batch_size = batch_size
        self.max_points = max_points
        self.interval = interval
        self.max_request = max_request
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the flusher waits here
        self._room = threading.Condition(self._lock)  # writers and flush() wait here
        self._pending: list[Point] = []
        self._added = 0  # points ever added
        self._done = 0  # points ever handled (stored or failed)
        self._flush_wanted = False
        self._closing = False
        self._errors: dict[str, BaseException] = {}
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"MetricBuffer(pending={len(self._pending)}, batch_size={self.batch_size})"

    # --- the hot path ---------------------------------------------------------------------
    def add(self, point: Point) -> None:
        with self._lock:
            if self._thread is None:
                self._start()
            pending = self._pending
            pending.append(point)
            self._added += 1
            n = len(pending)
            if n == self.batch_size:
                self._wake.notify()
            elif n >= self.max_points:
                self._wake.notify()
                while len(self._pending) >= self.max_points and not self._closing:
                    self._room.wait(1.0)

    # --- control --------------------------------------------------------------------------
    def flush(self, run_id: str | None = None, timeout: float | None = 300.0) -> None:
        """Wait until every point added so far is stored; raise a failed batch's error."""
        with self._lock:
            target = self._added
            if self._done < target:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = None
                    self._start()
                self._flush_wanted = True
                self._wake.notify()
                if not self._room.wait_for(lambda: self._done >= target, timeout):
                    raise TimeoutError(f"metrics were not stored within {timeout} s")
            error = self._take_error(run_id)
        if error is not None:
            raise error

    def pending(self) -> int:
        with self._lock:
            return self._added - self._done

    def close(self, timeout: float = 60.0) -> None:
        """Store what is left and stop the thread (at interpreter exit)."""
        with self._lock:
            self._closing = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            leftover, self._pending = self._pending, []
        if leftover:
            self._deliver(leftover)

    def _take_error(self, run_id: str | None) -> BaseException | None:
        if run_id is not None:
            return self._errors.pop(run_id, None)
        if self._errors:
            key = next(iter(self._errors))
            return self._errors.pop(key)
        return None

    # --- the flusher ----------------------------------------------------------------------
    def _start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="plinth-metric-flusher", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._closing and not self._flush_wanted and len(self._pending) < self.batch_size:
                    self._wake.wait(self.interval)
                batch, self._pending = self._pending, []
                self._flush_wanted = False
                closing = self._closing
                self._room.notify_all()
            if batch:
                self._deliver(batch)
            with self._lock:
                self._done += len(batch)
                self._room.notify_all()
                if closing and not self._pending:
                    return

    def _deliver(self, batch: list[Point]) -> None:
        groups: dict[tuple[str, str | None], list[tuple[str, Any, int, int]]] = {}
        for run_id, project, key, value, step, ts in batch:
            group = groups.get((run_id, project))
            if group is None:
                group = groups[(run_id, project)] = []
            group.append((key, value, step, ts))
        for (run_id, project), rows in groups.items():
            if run_id in self._errors:
                continue  # the run already failed; its error is waiting for flush()
            for i in range(0, len(rows), self.max_request):
                try:
                    self._send(run_id, project, rows[i : i + self.max_request])
                except BaseException as exc:  # kept for flush(); the thread must live on
                    log.warning("could not store %d metric points of run %s: %s", len(rows), run_id, exc)
                    with self._lock:
                        self._errors.setdefault(run_id, exc)
                    break

"""The inference log: requests and answers written to a Delta table per deployment, from a
bounded queue by a background thread, so that logging never blocks a request. A record
that finds the queue full is dropped and counted."""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

__all__ = ["InferenceLogger"]

log = logging.getLogger("plinth.serving")


def _jsonable(value: Any) -> str:
    import numpy as np
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        value = value.to_dict(orient="records")
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, default=str)


class InferenceLogger:
    """Appends records to the Delta table at ``location`` in batches, off the request path.

    ``sample_rate`` keeps that share of requests (1.0: all); ``on_drop`` is told of each
    record dropped because the queue (``max_queue`` records) was full.
    """

    def __init__(
        self,
        location: str,
        *,
        storage_options: dict[str, str] | None = None,
        max_queue: int = 10_000,
        sample_rate: float = 1.0,
        flush_interval_s: float = 0.5,
        on_drop: Callable[[str, str], None] | None = None,
    ) -> None:
        self.location = location
        self.storage_options = storage_options
        self.sample_rate = sample_rate
        self.flush_interval_s = flush_interval_s
        self.on_drop = on_drop
        self.dropped = 0
        self.written = 0
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"InferenceLogger({self.location!r}, sample_rate={self.sample_rate})"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="plinth-inference-log", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def log(self, *, model: str, version: str, rows: int, inputs: Any, outputs: Any, shadow: bool = False) -> None:
        """Queue one record; never blocks (a full queue drops it and counts the drop)."""
        if self.sample_rate < 1.0 and random.random() >= self.sample_rate:
            return
        record = {
            "ts": datetime.now(UTC),
            "model": model,
            "version": version,
            "shadow": shadow,
            "rows": rows,
            "inputs": inputs,
            "outputs": outputs,
        }
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(model, version)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.flush_interval_s)  # stop() wakes it to write what is queued
            batch: list[dict[str, Any]] = []
            while len(batch) < 5000:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if batch:
                try:
                    self._write(batch)
                except Exception:  # a log write failing must not stop serving
                    log.exception("inference log: %d records could not be written", len(batch))
                    self.dropped += len(batch)
            if stopping and self._queue.empty():
                return

    def _write(self, batch: list[dict[str, Any]]) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        table = pa.table(
            {
                "ts": pa.array([r["ts"] for r in batch], pa.timestamp("us", tz="UTC")),
                "model": [r["model"] for r in batch],
                "version": [r["version"] for r in batch],
                "shadow": [r["shadow"] for r in batch],
                "rows": pa.array([r["rows"] for r in batch], pa.int64()),
                "inputs": [_jsonable(r["inputs"]) for r in batch],
                "outputs": [_jsonable(r["outputs"]) for r in batch],
            }
        )
        write_deltalake(self.location, table, mode="append", storage_options=self.storage_options)
        self.written += len(batch)

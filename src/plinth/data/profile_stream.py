"""The first profile scan, done on the batches of an ingest while they are written.

A first ingest or an overwrite writes a version that holds exactly the rows of the
source, so the profile's first scan (counts, nulls, approximate distinct counts,
min/max/mean/std) need not read the table back: :class:`StreamProfiler` passes each batch
on to the Delta writer and also hands it, through a small bounded queue, to a DuckDB query
on its own thread. The CSV parse (DuckDB's threads), the Parquet encode (delta-rs) and
these aggregates then run side by side, and the source is read once.

The quantiles come from a uniform random sample of at most ``QUANTILE_SAMPLE`` rows of
the numeric columns, drawn as the batches pass (each row gets a random key from a seeded
generator; the rows with the smallest keys are kept), so the same data in the same
batches gives the same sample. Tables with up to that many rows are sampled whole, and
their quantiles are then exact, as before.

Nothing here decides what is written: if the profile thread fails or falls behind for
good, the batches still go to the writer, and the profile is computed from the table
instead (:func:`plinth.data.profiling.compute_profile` without ``first``).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from plinth.data.profiling import QUANTILE_SAMPLE, FirstPass, column_kind, first_pass_sql
from plinth.data.schemas import ColumnSchema

__all__ = ["StreamProfiler"]

QUEUE_BATCHES = 4  # batches in flight between the writer and the profile thread
SAMPLE_SEED = 0x5EED
_END = object()


class _Aborted(Exception):
    """The ingest stopped before the last batch: the profile query must end, unused."""


class RowSample:
    """A uniform random sample of at most ``size`` rows of a stream of batches (bottom-k
    random keys), of the columns ``names``."""

    def __init__(self, names: list[str], size: int = QUANTILE_SAMPLE, seed: int = SAMPLE_SEED):
        import numpy as np

        self.names = names
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._keys: list[Any] = []
        self._parts: list[pa.Table] = []
        self._held = 0
        self._threshold = 2.0  # keys are below 1: everything is kept until the first cut

    def add(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        if not n or not self.names:
            return
        keys = self._rng.random(n)
        mask = keys < self._threshold
        kept = int(mask.sum())
        if not kept:
            return
        part = pa.Table.from_batches([batch.select(self.names)])
        if kept < n:
            part = part.filter(pa.array(mask))
            keys = keys[mask]
        self._parts.append(part)
        self._keys.append(keys)
        self._held += kept
        if self._held > 2 * self.size:
            self._cut()

    def _cut(self) -> None:
        import numpy as np

        keys = np.concatenate(self._keys)
        table = pa.concat_tables(self._parts)
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keep.sort()  # rows stay in the order they came
            keys = keys[keep]
            table = table.take(pa.array(keep))
            self._threshold = float(keys.max())
        self._keys, self._parts, self._held = [keys], [table], len(keys)

    def table(self, schema: pa.Schema) -> pa.Table:
        if not self._parts:
            return pa.schema([schema.field(n) for n in self.names]).empty_table()
        self._cut()
        return self._parts[0].combine_chunks()


class StreamProfiler:
    """Profile the first pass of the rows passing through :meth:`wrap`.

    >>> profiler = StreamProfiler(columns)               # doctest: +SKIP
    >>> write(profiler.wrap(reader))                      # doctest: +SKIP
    >>> first = profiler.result()  # None when the pass could not be completed
    """

    def __init__(self, schema: pa.Schema, columns: list[ColumnSchema]):
        self.schema = schema
        self.columns = columns
        self._sql, self._params, _, _ = first_pass_sql(columns)
        numeric = [c.name for c in columns if column_kind(c.type) == "numeric"]
        self._sample = RowSample(numeric)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_BATCHES)
        self._stop = threading.Event()
        self._row: tuple[Any, ...] | None = None
        self._failed: BaseException | None = None
        self._complete = False
        self._seconds = 0.0
        self._con: Any = None
        self._thread = threading.Thread(target=self._run, name="plinth-profile", daemon=True)
        self._thread.start()

    # --- the writer's side -------------------------------------------------------------
    def wrap(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """The same batches, each also handed to the profile thread."""

        def batches() -> Iterator[pa.RecordBatch]:
            done = False
            try:
                for batch in reader:
                    if not self._stop.is_set():
                        self._sample.add(batch)
                        self._put(batch)
                    yield batch
                done = True
            finally:
                if done:
                    self._complete = True
                    self._put(_END)
                else:
                    self.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _put(self, item: Any) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    self._stop.set()

    # --- the profile thread ------------------------------------------------------------
    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    raise _Aborted from None
                continue
            if item is _END:
                return
            yield item

    def _run(self) -> None:
        from plinth.data.delta import new_duckdb

        start = time.perf_counter()
        try:
            self._con = con = new_duckdb()
            con.execute("SET threads = 1")
            try:
                con.register("__s", pa.RecordBatchReader.from_batches(self.schema, self._batches()))
                sql = f"SELECT {self._sql} FROM __s"
                self._row = tuple(con.execute(sql, self._params or None).fetchall()[0])
            finally:
                con.close()
        except BaseException as exc:  # noqa: BLE001 - reported through result(), never raised here
            self._failed = exc
            self._stop.set()
        self._seconds = time.perf_counter() - start

    # --- after the write ---------------------------------------------------------------
    def result(self, timeout: float | None = None) -> FirstPass | None:
        """The first pass over every batch, or None if it was not completed (the writer
        stopped early, or the profile query failed): profile the table then."""
        self._thread.join(timeout)
        if self._thread.is_alive() or not self._complete or self._row is None:
            self.close()
            return None
        return FirstPass(
            columns=self.columns,
            row=self._row,
            sample=self._sample.table(self.schema),
            seconds=self._seconds,
        )

    def close(self) -> None:
        """Stop the profile thread (an aborted or failed ingest); idempotent."""
        self._stop.set()
        con = self._con
        if con is not None and self._thread.is_alive():
            with contextlib.suppress(Exception):  # already closed
                con.interrupt()
        while True:  # unblock a put waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(5)

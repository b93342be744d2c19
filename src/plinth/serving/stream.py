"""Streaming inference: a Redis Stream in, a Redis Stream out, at least once.

>>> from plinth.serving import StreamWorker
>>> worker = StreamWorker("models:/churn@champion", "redis://127.0.0.1:6379/churn-in",   # doctest: +SKIP
...                       "redis://127.0.0.1:6379/churn-out", group="scorers", consumer="a")
>>> worker.run(max_entries=1000)                                                         # doctest: +SKIP

The worker reads the source stream through a consumer group, predicts in micro-batches
and writes one result entry per source entry; it acknowledges an entry only after its
result (or its dead letter) was written. An entry that a consumer read and never
acknowledged (the consumer crashed) stays pending in the group: workers reclaim entries
pending longer than ``claim_idle_ms`` with ``XAUTOCLAIM`` when they start, after a read
that found nothing, and at least every ``claim_idle_ms``. Nothing is lost; an entry whose
result was written just before a crash is scored again, and every result of a reclaimed
entry carries ``redelivered=1`` so that readers can drop duplicates by ``source_id``.

**Entries.** The fields of a source entry are the model's input columns, with values as
strings (``tenure=12``, ``plan=pro``), converted to the types of the model's signature; or
one field ``data`` holding a JSON object of the columns (``data={"tenure": 12, "plan":
"pro"}``); for a tensor model, ``data`` holds one row as a JSON array. Other fields are
ignored.

**Results.** A result entry has ``source_id`` (the source entry's id), ``prediction`` (one
value per row; several values as a JSON array; a model that returns a DataFrame gives one
field per output column), ``model`` (the version that scored it) and ``redelivered``.
Numbers and booleans are written as JSON (``1``, ``0.25``, ``true``), strings as they are.

**Dead letters.** An entry that cannot be scored (a missing column, a value of the wrong
type, not JSON, the model refusing it) goes to the dead-letter stream (``<sink key>:dead``
unless given) with ``source_id``, ``error`` and its ``fields`` as JSON, and is acknowledged:
a bad entry never blocks the group.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from plinth.core.errors import InvalidInput, PlinthError

__all__ = ["StreamStats", "StreamWorker", "stream_predict"]

log = logging.getLogger("plinth.serving.stream")

DATA_FIELD = "data"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class StreamStats(BaseModel):
    """What a worker did: entries handled, scored, sent to the dead-letter stream, reclaimed;
    ``consumed`` counts the entries read, ``acked`` those acknowledged (after their write)."""

    consumed: int = 0
    acked: int = 0
    entries: int = 0
    predicted: int = 0
    dead: int = 0
    reclaimed: int = 0
    batches: int = 0


@dataclass(frozen=True)
class Entry:
    """One source entry: its id, its fields, and whether it was delivered before."""

    id: str
    fields: dict[str, str]
    redelivered: bool = False


def parse_stream_url(url: str, what: str) -> tuple[str, str]:
    """(Redis URL, stream key) of ``redis://host:port[/db]/<key>``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"redis", "rediss"} or not parts.hostname:
        raise InvalidInput(f"{what} {url!r} is not a stream URL: use redis://host:port/<stream key>", field=what)
    path = [unquote(p) for p in parts.path.split("/") if p]
    db = "0"
    if len(path) > 1 and path[0].isdigit():
        db, path = path[0], path[1:]
    key = "/".join(path)
    if not key:
        raise InvalidInput(f"{what} {url!r} names no stream: add /<stream key>", field=what)
    netloc = parts.netloc
    return f"{parts.scheme}://{netloc}/{db}", key


def _json_value(value: Any) -> str:
    """A field value: strings as they are, everything else as JSON."""
    if hasattr(value, "item"):  # a NumPy scalar
        value = value.item()
    if isinstance(value, str):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(str(value))
    return json.dumps(value, default=str)


def _typed(name: str, value: Any, type_: str) -> Any:
    """``value`` (a string from a field, or a JSON value) as the signature type ``type_``."""
    if not isinstance(value, str):
        return value  # JSON already carries numbers and booleans; the model's check does the rest
    try:
        if type_.startswith(("int", "uint")):
            return int(value)
        if type_.startswith("float"):
            return float(value)
        if type_ == "bool":
            lowered = value.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ValueError(value)
    except ValueError:
        raise InvalidInput(f"field {name!r}: {value!r} is not a {type_}", field=name, expected=type_) from None
    return value


class StreamWorker:
    """Scores a Redis Stream into another through a consumer group; see the module's docstring.

    Building one does no I/O: ``start()`` (or ``run()``) loads the model, connects and
    creates the group. ``run()`` loops until ``max_entries`` entries were handled or
    ``stop()`` is called; ``read()``, ``reclaim()`` and ``process()`` are its steps.
    """

    def __init__(
        self,
        model: str,
        source: str,
        sink: str,
        *,
        group: str = "plinth",
        consumer: str = "plinth-1",
        batch_size: int = 64,
        block_ms: int = 1000,
        claim_idle_ms: int = 30_000,
        dead_letter: str | None = None,
        trust: bool = False,
        project: str | None = None,
    ) -> None:
        self.model = model
        self.source = source
        self.sink = sink
        self.group = group
        self.consumer = consumer
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.dead_letter = dead_letter
        self.trust = trust
        self.project = project
        self.stats = StreamStats()  # filled in by run()
        self._served: Any = None
        self._clients: dict[str, Any] = {}
        self._stopping = False
        self._claim_cursor = "0-0"
        self.record: Any = None  # this worker's record on the platform, once run() registered it
        self._last_report = 0.0

    def __repr__(self) -> str:
        return f"StreamWorker(model={self.model!r}, source={self.source!r}, sink={self.sink!r}, group={self.group!r})"

    # --- setup ------------------------------------------------------------------------------
    def _check(self) -> None:
        for name in ("batch_size", "block_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive number, not {value!r}", field=name)
        if not isinstance(self.claim_idle_ms, int) or self.claim_idle_ms < 0:
            raise InvalidInput(f"claim_idle_ms must be 0 or more, not {self.claim_idle_ms!r}", field="claim_idle_ms")
        for name in ("group", "consumer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise InvalidInput(f"{name} must be a non-empty name", field=name)

    def start(self) -> None:
        """Load the model, connect to Redis and create the consumer group (if missing)."""
        if self._served is not None:
            return
        self._check()
        source_url, self.source_key = parse_stream_url(self.source, "source")
        sink_url, self.sink_key = parse_stream_url(self.sink, "sink")
        self.dead_key = self.dead_letter or f"{self.sink_key}:dead"
        if sink_url == source_url and self.sink_key == self.source_key:
            raise InvalidInput("the sink is the source stream: write results to another stream", field="sink")
        try:
            import redis
        except ImportError:
            raise InvalidInput("streaming needs redis-py: pip install 'plinth-ml[redis]'", field="source") from None
        from plinth.serving.loading import load_served

        served = load_served(self.model, trust=self.trust, project=self.project)
        self.source_client = self._client(redis, source_url)
        self.sink_client = self._client(redis, sink_url)
        try:
            self.source_client.xgroup_create(self.source_key, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        except redis.ConnectionError as exc:
            from plinth.core.errors import Unavailable

            raise Unavailable(f"cannot reach Redis at {source_url}: {exc}") from None
        self.model_label = (
            f"models:/{served.name}/{served.version}" if self.model.startswith("models:/") else self.model
        )
        self._served = served

    def _client(self, redis: Any, url: str) -> Any:
        if url not in self._clients:
            self._clients[url] = redis.Redis.from_url(url, decode_responses=False)
        return self._clients[url]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run()``."""
        self._stopping = True

    # --- the steps --------------------------------------------------------------------------
    @staticmethod
    def _entries(raw: list[Any], redelivered: bool) -> list[Entry]:
        out = []
        for entry_id, fields in raw:
            decoded: dict[str, str] = {}
            for k, v in (fields or {}).items():
                key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
                decoded[key] = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
            eid = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            out.append(Entry(eid, decoded, redelivered))
        return out

    def read(self, count: int | None = None, pending: bool = False) -> list[Entry]:
        """New entries for this consumer (blocking up to ``block_ms``); with ``pending``, the
        entries this consumer name read before and never acknowledged."""
        self.start()
        reply = self.source_client.xreadgroup(
            self.group,
            self.consumer,
            {self.source_key: "0" if pending else ">"},
            count=count or self.batch_size,
            block=None if pending else self.block_ms,
        )
        raw = reply[0][1] if reply else []
        return self._entries(raw, redelivered=pending)

    def reclaim(self, count: int | None = None) -> list[Entry]:
        """Entries other consumers left pending for ``claim_idle_ms`` or longer, now this consumer's."""
        self.start()
        reply = self.source_client.xautoclaim(
            self.source_key,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=count or self.batch_size,
        )
        cursor, raw = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else str(cursor)
        if deleted:  # trimmed from the stream while pending: nothing left to score
            self.source_client.xack(self.source_key, self.group, *deleted)
        return self._entries([r for r in raw if r and r[1] is not None], redelivered=True)

    def _row(self, entry: Entry) -> Any:
        """The model input of one entry; InvalidInput says what is wrong with it."""
        signature = self._served.signature
        fields = entry.fields
        if DATA_FIELD in fields and (signature is None or DATA_FIELD not in signature.column_names):
            try:
                values = json.loads(fields[DATA_FIELD])
            except ValueError as exc:
                raise InvalidInput(f"field 'data' is not JSON: {exc}", field=DATA_FIELD) from None
        else:
            values = fields
        if signature is not None and not signature.is_columns:
            if not isinstance(values, list):
                raise InvalidInput("a tensor model takes field 'data' holding one row as a JSON array", field="data")
            return values
        if not isinstance(values, dict):
            raise InvalidInput("field 'data' must hold a JSON object of the model's columns", field=DATA_FIELD)
        if signature is None:
            return values
        row = {}
        for spec in signature.inputs:
            if spec.name not in values:
                raise InvalidInput(f"missing field {spec.name!r} ({spec.type})", field=spec.name, expected=spec.type)
            row[spec.name] = _typed(spec.name, values[spec.name], spec.type)
        return row

    def _predict(self, rows: list[Any]) -> list[dict[str, str]]:
        import numpy as np
        import pandas as pd

        from plinth.serving.batch import prediction_columns

        model = self._served.model
        data = np.asarray(rows) if rows and isinstance(rows[0], list) else pd.DataFrame(rows)
        names, arrays = prediction_columns(model.predict(data), len(rows))
        columns = [a.to_pylist() for a in arrays]
        if names and names[0].startswith("prediction_") and all(n.startswith("prediction_") for n in names):
            return [{"prediction": json.dumps([c[i] for c in columns], default=str)} for i in range(len(rows))]
        return [{n: _json_value(c[i]) for n, c in zip(names, columns, strict=True)} for i in range(len(rows))]

    def predict(self, entries: list[Entry]) -> tuple[list[tuple[Entry, dict[str, str]]], list[tuple[Entry, str]]]:
        """(entry, result fields) for the entries scored, (entry, error) for the others."""
        self.start()
        good: list[tuple[Entry, Any]] = []
        dead: list[tuple[Entry, str]] = []
        for entry in entries:
            try:
                good.append((entry, self._row(entry)))
            except InvalidInput as exc:
                dead.append((entry, exc.message))
        if not good:
            return [], dead
        try:
            outputs = self._predict([row for _, row in good])
            return [(e, out) for (e, _), out in zip(good, outputs, strict=True)], dead
        except Exception:  # one bad entry fails the batch: score them one by one to find it
            results = []
            for entry, row in good:
                try:
                    results.append((entry, self._predict([row])[0]))
                except Exception as exc:
                    message = exc.message if isinstance(exc, PlinthError) else f"{type(exc).__name__}: {exc}"
                    dead.append((entry, f"the model refused it: {message}"[:2000]))
            return results, dead

    def write(self, results: list[tuple[Entry, dict[str, str]]], dead: list[tuple[Entry, str]]) -> None:
        """Write the result entries and dead letters, in one transaction."""
        pipe = self.sink_client.pipeline(transaction=True)
        for entry, fields in results:
            body = {
                "source_id": entry.id,
                **fields,
                "model": self.model_label,
                "redelivered": "1" if entry.redelivered else "0",
            }
            pipe.xadd(self.sink_key, body)
        for entry, error in dead:
            pipe.xadd(
                self.dead_key,
                {"source_id": entry.id, "error": error, "fields": json.dumps(entry.fields), "model": self.model_label},
            )
        pipe.execute()

    def ack(self, entries: list[Entry]) -> None:
        if entries:
            self.source_client.xack(self.source_key, self.group, *[e.id for e in entries])

    def process(self, entries: list[Entry]) -> None:
        """Score, write, then acknowledge ``entries``."""
        if not entries:
            return
        self.stats.consumed += len(entries)
        results, dead = self.predict(entries)
        self.write(results, dead)
        self.ack(entries)
        self.stats.acked += len(entries)
        self.stats.entries += len(entries)
        self.stats.predicted += len(results)
        self.stats.dead += len(dead)
        self.stats.reclaimed += sum(e.redelivered for e in entries)
        self.stats.batches += 1

    def _room(self, max_entries: int | None) -> int:
        if max_entries is None:
            return self.batch_size
        return max(0, min(self.batch_size, max_entries - self.stats.entries))

    def _reclaim_all(self, max_entries: int | None) -> None:
        while not self._stopping and self._room(max_entries):
            entries = self.reclaim(self._room(max_entries))
            self.process(entries)
            if self._claim_cursor == "0-0":
                return

    # --- visible to the platform: registered, counts and a heartbeat, its end ---------------------
    def _register(self) -> None:
        from plinth.core.ops import call
        from plinth.serving import schemas as s
        from plinth.serving import stream_workers as sw

        self.record = call(
            s.REGISTER_WORKER,
            sw.register_worker,
            project=self.project,
            source=sw.public_url(self.source),
            group=self.group,
            consumer=self.consumer,
            sink=sw.public_url(self.sink),
            model=self.model_label,
        )
        self._last_report = time.monotonic()

    def _report(self, state: str = "running", error: str | None = None) -> None:
        from plinth.core.ops import call
        from plinth.serving import schemas as s
        from plinth.serving import stream_workers as sw

        counts = {name: getattr(self.stats, name) for name in s.COUNTS}
        try:
            call(
                s.REPORT_WORKER,
                sw.report_worker,
                project=self.project,
                id=self.record.id,
                counts=counts,
                state=state,
                error=error,
            )
        except Exception:  # the stream goes on; the platform sees a late heartbeat
            log.warning("stream worker %s: its report could not be written", self.consumer, exc_info=True)
        self._last_report = time.monotonic()

    def _beat(self) -> None:
        from plinth.serving.stream_workers import HEARTBEAT_S

        if time.monotonic() - self._last_report >= HEARTBEAT_S:
            self._report()

    # --- the loop -------------------------------------------------------------------------------
    def run(self, max_entries: int | None = None) -> StreamStats:
        """Handle entries until ``max_entries`` were handled or ``stop()`` was called. The worker
        registers itself with the platform, reports its counts while it runs, and its end."""
        self.start()
        self._register()
        try:
            self._loop(max_entries)
        except (KeyboardInterrupt, SystemExit):
            self._report("stopped")
            raise
        except BaseException as exc:
            message = exc.message if isinstance(exc, PlinthError) else f"{type(exc).__name__}: {exc}"
            self._report("failed", error=message)
            raise
        self._report("stopped")
        return self.stats

    def _loop(self, max_entries: int | None) -> None:
        while not self._stopping and self._room(max_entries):  # this consumer's own leftovers first
            entries = self.read(self._room(max_entries), pending=True)
            if not entries:
                break
            self.process(entries)
            self._beat()
        self._reclaim_all(max_entries)
        interval = max(self.claim_idle_ms, self.block_ms) / 1000
        last_claim = time.monotonic()
        while not self._stopping and self._room(max_entries):
            entries = self.read(self._room(max_entries))
            self.process(entries)
            if not entries or time.monotonic() - last_claim >= interval:
                self._reclaim_all(max_entries)
                last_claim = time.monotonic()
            self._beat()


def stream_predict(model: str, source: str, sink: str, max_entries: int | None = None, **options: Any) -> StreamStats:
    """Run a :class:`StreamWorker` until ``max_entries`` entries were handled (forever if None).

    >>> import plinth
    >>> plinth.serving.stream_predict("models:/churn/3", "redis://127.0.0.1:6379/in",      # doctest: +SKIP
    ...                               "redis://127.0.0.1:6379/out", max_entries=100).predicted
    100
    """
    worker = StreamWorker(model, source, sink, **options)
    try:
        return worker.run(max_entries=max_entries)
    finally:
        worker.close()

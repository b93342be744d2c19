"""The Redis online store: one string key per (table, entity), ``"<ts>|<created>|<json>"``.

A Lua script makes "keep the newer row" one atomic step per batch, so concurrent
materializations and pushes cannot put an older value back. Reads are one ``MGET``.
Needs the ``redis`` extra (``pip install 'plinth-ml[redis]'``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from plinth.core.errors import InvalidInput, Unavailable
from plinth.features.online_store import OnlineStore, Row, masked_url

__all__ = ["RedisOnlineStore"]

PREFIX = "plinth:f:"
WRITE_CHUNK = 1000
_WRITE_NEWER = """
local n = 0
for i = 1, #KEYS do
  local new = ARGV[i]
  local old = redis.call('GET', KEYS[i])
  local write = true
  if old then
    local ts, cr = string.match(new, '^(%-?%d+)|(%-?%d+)|')
    local ots, ocr = string.match(old, '^(%-?%d+)|(%-?%d+)|')
    ts, cr, ots, ocr = tonumber(ts), tonumber(cr), tonumber(ots), tonumber(ocr)
    if ots and (ots > ts or (ots == ts and ocr > cr)) then write = false end
  end
  if write then
    redis.call('SET', KEYS[i], new)
    n = n + 1
  end
end
return n
"""


class RedisOnlineStore(OnlineStore):
    concurrent_writes = True  # a connection per thread: one view encodes while Redis runs another's

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None
        self._script: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        import redis
                    except ImportError:
                        raise InvalidInput(
                            "the Redis online store needs the redis package: pip install 'plinth-ml[redis]'",
                            field="online_store_url",
                        ) from None
                    client = redis.Redis.from_url(self.url, socket_timeout=10, socket_connect_timeout=5)
                    self._script = client.register_script(_WRITE_NEWER)
                    self._client = client
        return self._client

    def _fail(self, exc: Exception) -> Unavailable:
        return Unavailable(f"the Redis online store at {masked_url(self.url)} failed: {exc}")

    @staticmethod
    def _key(table: str, key: str) -> str:
        return f"{PREFIX}{table}:{key}"

    def write(self, table: str, rows: Sequence[Row]) -> int:
        import redis

        if not rows:
            return 0
        client = self.client
        try:
            pipe = client.pipeline(transaction=False)  # every chunk in one round trip; each chunk atomic
            prefix = self._key(table, "")
            for i in range(0, len(rows), WRITE_CHUNK):
                chunk = rows[i : i + WRITE_CHUNK]
                keys = [prefix + k for k, _ts, _cr, _v in chunk]
                values = [f"{ts}|{cr}|{v}" for _k, ts, cr, v in chunk]  # one argument a row: half the encoding
                self._script(keys=keys, args=values, client=pipe)
            return sum(int(n) for n in pipe.execute())
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def read(self, table: str, keys: Sequence[str]) -> list[tuple[int, str] | None]:
        import redis

        try:
            if len(keys) == 1:
                values = [self.client.get(self._key(table, keys[0]))]
            else:
                values = self.client.mget([self._key(table, k) for k in keys])
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        return [self._parse(raw) for raw in values]

    def read_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[list[tuple[int, str] | None]]:
        import redis

        names = [self._key(table, k) for table, keys in requests for k in keys]
        if not names:
            return [[] for _ in requests]
        try:
            values = [self.client.get(names[0])] if len(names) == 1 else self.client.mget(names)
        except redis.RedisError as exc:
            raise self._fail(exc) from None
        parsed = [self._parse(raw) for raw in values]
        out, at = [], 0
        for _table, keys in requests:
            out.append(parsed[at : at + len(keys)])
            at += len(keys)
        return out

    @staticmethod
    def _parse(raw: bytes | None) -> tuple[int, str] | None:
        if raw is None:
            return None
        ts, _cr, payload = raw.decode().split("|", 2)
        return int(ts), payload

    def _scan(self, table: str) -> Any:
        pattern = self._key(table, "*").replace("[", "\\[").replace("]", "\\]")
        return self.client.scan_iter(match=pattern, count=1000)

    def count(self, table: str) -> int:
        import redis

        try:
            return sum(1 for _ in self._scan(table))
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def drop(self, table: str) -> None:
        import redis

        try:
            batch = []
            for key in self._scan(table):
                batch.append(key)
                if len(batch) >= 1000:
                    self.client.unlink(*batch)
                    batch = []
            if batch:
                self.client.unlink(*batch)
        except redis.RedisError as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

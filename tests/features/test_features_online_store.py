"""The online store contract: SQLite and Redis pass the same suite (parametrized)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from plinth.features.online_store import OnlineStore, open_online_store


@pytest.fixture
def store(store_url: str) -> Iterator[OnlineStore]:
    s = open_online_store(store_url)
    yield s
    from plinth.features.online_store import close_online_stores

    close_online_stores()


@pytest.fixture
def table(store: OnlineStore) -> Iterator[str]:
    name = f"{uuid.uuid4().hex[:26]}/view"
    yield name
    store.drop(name)


def test_write_then_read_in_key_order_with_misses(store: OnlineStore, table: str) -> None:
    assert store.write(table, [("1", 100, 100, '{"a":1}'), ("2", 200, 200, '{"a":2}')]) == 2
    assert store.read(table, ["2", "9", "1", "2"]) == [(200, '{"a":2}'), None, (100, '{"a":1}'), (200, '{"a":2}')]
    assert store.read(table, ["1"]) == [(100, '{"a":1}')]
    assert store.read(table, ["9"]) == [None]
    assert store.count(table) == 2


def test_the_newer_row_wins_by_event_time_then_created(store: OnlineStore, table: str) -> None:
    store.write(table, [("k", 1_000, 1_000, "new")])
    assert store.write(table, [("k", 999, 5_000, "older event")]) == 0
    assert store.read(table, ["k"]) == [(1_000, "new")]
    assert store.write(table, [("k", 1_000, 999, "same event, older created")]) == 0
    assert store.read(table, ["k"]) == [(1_000, "new")]
    assert store.write(table, [("k", 1_000, 2_000, "same event, newer created")]) == 1
    assert store.read(table, ["k"]) == [(1_000, "same event, newer created")]
    assert store.write(table, [("k", 1_001, 0, "newer event")]) == 1
    assert store.read(table, ["k"]) == [(1_001, "newer event")]


def test_one_batch_with_the_same_key_keeps_the_newest(store: OnlineStore, table: str) -> None:
    store.write(table, [("k", 3, 3, "c"), ("k", 1, 1, "a"), ("k", 2, 2, "b")])
    assert store.read(table, ["k"]) == [(3, "c")]


def test_tables_are_separate_and_drop_forgets_one(store: OnlineStore, table: str) -> None:
    other = table + "-other"
    store.write(table, [("k", 1, 1, "mine")])
    store.write(other, [("k", 2, 2, "theirs")])
    assert store.read(table, ["k"]) == [(1, "mine")] and store.read(other, ["k"]) == [(2, "theirs")]
    store.drop(other)
    assert store.read(other, ["k"]) == [None] and store.count(other) == 0
    assert store.read(table, ["k"]) == [(1, "mine")]


def test_keys_and_values_keep_any_text(store: OnlineStore, table: str) -> None:
    keys = ["a|b", "x\x1fy", "ü*?[]", " ", "-1"]
    store.write(table, [(k, 10 + i, 10, f'{{"v":"{i}|ü"}}') for i, k in enumerate(keys)])
    assert [r[0] for r in store.read(table, keys)] == [10, 11, 12, 13, 14]  # type: ignore[index]
    assert store.read(table, ["ü*?[]"]) == [(12, '{"v":"2|ü"}')]
    assert store.count(table) == len(keys)


def test_many_keys_in_one_read(store: OnlineStore, table: str) -> None:
    store.write(table, [(str(i), i, i, str(i)) for i in range(2500)])
    got = store.read(table, [str(i) for i in range(2600)])
    assert got[:2500] == [(i, str(i)) for i in range(2500)] and got[2500:] == [None] * 100


def test_concurrent_writers_never_go_back_in_time(store: OnlineStore, table: str) -> None:
    def writer(offset: int) -> None:
        for ts in range(offset, 200, 4):
            store.write(table, [("k", ts, ts, str(ts))])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.read(table, ["k"]) == [(199, "199")]

"""Streaming inference on the real Redis on 127.0.0.1:6379: micro-batches through a consumer group,
acknowledged after the write; a crashed consumer's entries are reclaimed; malformed entries go to
the dead-letter stream. Each test uses its own stream keys and deletes them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models_support import iris, iris_pipeline, log_with_services
from plinth.core.errors import InvalidInput
from plinth.core.platform import Platform
from plinth.registry import service as registry
from plinth.serving import StreamWorker
from tests_support import need, port_open

REDIS = "redis://127.0.0.1:6379"
COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


@pytest.fixture
def streams() -> Iterator[tuple[Any, str, str]]:
    """(a Redis client, the source key, the sink key), deleted afterwards with the dead letters."""
    need(port_open(6379), "Redis on 127.0.0.1:6379")
    import redis

    client = redis.Redis.from_url(f"{REDIS}/0", decode_responses=True)
    tag = uuid.uuid4().hex[:10]
    source, sink = f"plinth-test:{tag}:in", f"plinth-test:{tag}:out"
    yield client, source, sink
    client.delete(source, sink, f"{sink}:dead", f"{tag}:letters")
    client.close()


@pytest.fixture
def model(platform: Platform) -> Any:
    """Model ``iris`` version 1, registered; returns the fitted pipeline to compare with."""
    X, _ = iris()
    fitted = iris_pipeline()
    source = log_with_services(platform, fitted, input_example=X.head(3))
    platform.caller().call(registry.register_version, name="iris", source=source)
    return fitted


def _rows(n: int, start: int = 0) -> list[dict[str, float]]:
    X, _ = iris()
    return [{c: float(v) for c, v in zip(COLUMNS, row, strict=True)} for row in X.iloc[start : start + n].to_numpy()]


def _expected(fitted: Any, rows: list[dict[str, float]]) -> list[str]:
    import pandas as pd

    return [str(int(p)) for p in fitted.predict(pd.DataFrame(rows, columns=COLUMNS))]


def _worker(source: str, sink: str, consumer: str = "a", **options: Any) -> StreamWorker:
    options = {"block_ms": 50, **options}
    return StreamWorker("models:/iris/1", f"{REDIS}/{source}", f"{REDIS}/0/{sink}", consumer=consumer, **options)


def test_entries_are_scored_in_micro_batches_and_acknowledged(streams, model) -> None:  # type: ignore[no-untyped-def]
    client, source, sink = streams
    rows = _rows(7, start=45)
    ids = [client.xadd(source, {k: str(v) for k, v in row.items()}) for row in rows[:4]]  # fields as strings
    ids += [client.xadd(source, {"data": json.dumps(row)}) for row in rows[4:]]  # one JSON field
    worker = _worker(source, sink, batch_size=3)
    stats = worker.run(max_entries=7)
    worker.close()
    assert (stats.entries, stats.predicted, stats.dead, stats.reclaimed, stats.batches) == (7, 7, 0, 0, 3)
    results = client.xrange(sink)
    assert [f["source_id"] for _, f in results] == ids
    assert [f["prediction"] for _, f in results] == _expected(model, rows)
    assert {(f["model"], f["redelivered"]) for _, f in results} == {("models:/iris/1", "0")}
    assert client.xpending(source, "plinth")["pending"] == 0
    assert client.xlen(f"{sink}:dead") == 0


def test_malformed_entries_go_to_the_dead_letter_stream(streams, model) -> None:  # type: ignore[no-untyped-def]
    client, source, sink = streams
    good = _rows(2)
    row = {k: str(v) for k, v in good[0].items()}
    ids = {
        "good": client.xadd(source, row),
        "missing": client.xadd(source, {k: v for k, v in row.items() if k != "petal_width"}),
        "not_a_number": client.xadd(source, {**row, "sepal_width": "wide"}),
        "not_json": client.xadd(source, {"data": "{sepal_length: 1"}),
        "json_list": client.xadd(source, {"data": "[1, 2, 3, 4]"}),
        "good_json": client.xadd(source, {"data": json.dumps(good[1])}),
    }
    letters = f"{sink.rsplit(':', 2)[1]}:letters"
    worker = _worker(source, sink, dead_letter=letters)
    stats = worker.run(max_entries=6)
    worker.close()
    assert (stats.predicted, stats.dead) == (2, 4)
    assert [f["source_id"] for _, f in client.xrange(sink)] == [ids["good"], ids["good_json"]]
    dead = {f["source_id"]: f for _, f in client.xrange(letters)}
    assert dead[ids["missing"]]["error"] == "missing field 'petal_width' (float64)"
    assert dead[ids["not_a_number"]]["error"] == "field 'sepal_width': 'wide' is not a float64"
    assert dead[ids["not_json"]]["error"].startswith("field 'data' is not JSON")
    assert dead[ids["json_list"]]["error"] == "field 'data' must hold a JSON object of the model's columns"
    assert json.loads(dead[ids["not_a_number"]]["fields"])["sepal_width"] == "wide"
    assert client.xpending(source, "plinth")["pending"] == 0  # dead letters are acknowledged too


def _env(home: Path) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    out.update(PLINTH_HOME=str(home), PLINTH_SYSTEM_METRICS="0", PLINTH_CAPTURE_ENVIRONMENT="0")
    return out


CRASH = textwrap.dedent(
    """
    import os, sys
    from plinth.serving import StreamWorker
    source, sink, how = sys.argv[1:4]
    worker = StreamWorker("models:/iris/1", source, sink, consumer="doomed-" + how, block_ms=100)
    entries = worker.read(int(sys.argv[4]))
    assert len(entries) == int(sys.argv[4]), entries
    if how == "after-write":
        worker.write(*worker.predict(entries))
    os._exit(9)  # dies before the acknowledgement
    """
)


@pytest.mark.timeout(120)
def test_a_crashed_consumers_entries_are_reclaimed(streams, model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, source, sink = streams
    rows = _rows(10, start=95)
    ids = [client.xadd(source, {"data": json.dumps(row)}) for row in rows]
    for how, count in (("after-read", 5), ("after-write", 3)):
        proc = subprocess.run(
            [sys.executable, "-c", CRASH, f"{REDIS}/{source}", f"{REDIS}/{sink}", how, str(count)],
            env=_env(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert proc.returncode == 9, proc.stderr
    assert client.xpending(source, "plinth")["pending"] == 8
    assert client.xlen(sink) == 3  # written by the second process, never acknowledged

    survivor = _worker(source, sink, consumer="b", claim_idle_ms=0)
    stats = survivor.run(max_entries=10)
    survivor.close()
    assert (stats.entries, stats.predicted, stats.reclaimed) == (10, 10, 8)
    assert client.xpending(source, "plinth")["pending"] == 0
    results: dict[str, list[dict[str, str]]] = {}
    for _, fields in client.xrange(sink):
        results.setdefault(fields["source_id"], []).append(fields)
    assert sorted(results) == sorted(ids)  # nothing lost
    expected = dict(zip(ids, _expected(model, rows), strict=True))
    for i, sid in enumerate(ids):
        marks = [r["redelivered"] for r in results[sid]]
        assert {r["prediction"] for r in results[sid]} == {expected[sid]}
        if i < 5:  # read, never written: scored once, by the survivor, marked
            assert marks == ["1"]
        elif i < 8:  # written, not acknowledged: the one duplicate at-least-once allows, marked
            assert marks == ["0", "1"]
        else:  # never read by the crashed consumers
            assert marks == ["0"]


def test_plinth_stream_command_and_bad_options(streams, model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, source, sink = streams
    for row in _rows(3):
        client.xadd(source, {k: str(v) for k, v in row.items()})
    cmd = [sys.executable, "-m", "plinth.cli.main", "stream", "--model", "models:/iris/1"]
    args = ["--source", f"{REDIS}/{source}", "--sink", f"{REDIS}/{sink}", "--group", "cli", "--consumer", "c1"]
    done = subprocess.run(
        [*cmd, *args, "--batch-size", "2", "--block-ms", "100", "--max-entries", "3", "--json"],
        env=_env(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predicted"] == 3 and client.xlen(sink) == 3

    # without --max-entries it runs until SIGTERM, then finishes the batch in hand and reports
    proc = subprocess.Popen(
        [*cmd, *args, "--block-ms", "100", "--json"],
        env=_env(tmp_path / "home"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    client.xadd(source, {k: str(v) for k, v in _rows(1)[0].items()})
    deadline = time.monotonic() + 60
    while client.xlen(sink) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert json.loads(out)["predicted"] == 1 and client.xlen(sink) == 4
    assert client.xpending(source, "cli")["pending"] == 0

    with pytest.raises(InvalidInput, match="the sink is the source stream"):
        _worker(source, source).start()
    with pytest.raises(InvalidInput, match="is not a stream URL"):
        StreamWorker("models:/iris/1", "http://127.0.0.1/x", f"{REDIS}/{sink}").start()
    with pytest.raises(InvalidInput, match="names no stream"):
        StreamWorker("models:/iris/1", f"{REDIS}/", f"{REDIS}/{sink}").start()
    with pytest.raises(InvalidInput, match="batch_size must be a positive number"):
        _worker(source, sink, batch_size=0).start()
    assert client.xlen(sink) == 4 and client.xinfo_groups(source)[0]["name"] == "cli"  # nothing else happened


def test_workers_register_and_report_their_counts(streams, model, platform: Platform, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import plinth
    from plinth.core.settings import load_settings
    from plinth.serving import stream_workers as sw
    from plinth.store.events import Event

    client, source, sink = streams
    rows = _rows(5)
    for row in rows[:4]:
        client.xadd(source, {k: str(v) for k, v in row.items()})
    client.xadd(source, {"data": "not json"})
    worker = _worker(source, sink, consumer="counted", batch_size=2)
    stats = worker.run(max_entries=5)
    worker.close()
    assert (stats.consumed, stats.acked, stats.predicted, stats.dead) == (5, 5, 4, 1)
    (seen,) = plinth.serving.list_stream_workers()
    assert (seen.consumer, seen.group, seen.state, seen.model, seen.stale) == (
        "counted",
        "plinth",
        "stopped",
        "models:/iris/1",
        False,
    )
    assert (seen.source, seen.sink) == (f"{REDIS}/{source}", f"{REDIS}/0/{sink}")
    assert (seen.consumed, seen.acked, seen.predicted, seen.dead, seen.reclaimed, seen.batches) == (5, 5, 4, 1, 0, 3)
    assert seen.stopped_at is not None and seen.stopped_at >= seen.started_at
    assert plinth.serving.get_stream_worker(seen.id) == seen
    from test_serving_deployments import plinth_cli

    out = plinth_cli(tmp_path / "home", "stream-workers", "--json")
    assert out.exit_code == 0 and [(w["consumer"], w["acked"]) for w in json.loads(out.output)] == [("counted", 5)]
    out = plinth_cli(tmp_path / "home", "stream-workers", "nope")
    assert out.exit_code == 4 and "stream worker 'nope' does not exist" in out.output
    with platform.db.session() as session:
        actions = [e.action for e in session.query(Event).filter(Event.resource == f"stream-workers:/{seen.id}")]
    assert actions == ["stream_worker.start", "stream_worker.stop"]

    # a restart under the same name takes the record over with fresh counts, running
    again = _worker(source, sink, consumer="counted")
    again.start()
    again._register()
    assert again.record.id == seen.id and (again.record.state, again.record.consumed) == ("running", 0)
    # bad reports are refused and change nothing
    caller = platform.caller()
    with pytest.raises(InvalidInput, match="counts must be whole numbers of consumed, acked"):
        caller.call(sw.report_worker, id=seen.id, counts={"eaten": 3})
    with pytest.raises(InvalidInput, match="state must be one of running, stopped, failed"):
        caller.call(sw.report_worker, id=seen.id, counts={}, state="paused")
    # a worker that dies without a word shows as stale once its heartbeat is old
    later = platform.clock() + sw.STALE_AFTER + sw.timedelta(seconds=1)
    future = Platform(load_settings(home=tmp_path / "home"), clock=lambda: later)
    try:
        stale = future.caller().call(sw.get_worker, id=seen.id)
    finally:
        future.close()
    assert (stale.state, stale.stale) == ("running", True)
    again._report("failed", error="RuntimeError: boom")
    again.close()
    failed = plinth.serving.get_stream_worker(seen.id)
    assert (failed.state, failed.error) == ("failed", "RuntimeError: boom")
    with pytest.raises(InvalidInput, match="is failed: it registers again when it restarts"):
        caller.call(sw.report_worker, id=seen.id, counts={})
    assert sw.public_url("redis://user:secret@10.0.0.1:6380/2/in") == "redis://10.0.0.1:6380/2/in"


def test_a_remote_worker_is_visible_through_rest_and_the_page(streams, model, remote_sdk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, source, sink = streams
    for row in _rows(3):
        client.xadd(source, {k: str(v) for k, v in row.items()})
    env = {
        **_env(tmp_path / "cli-home"),
        "PLINTH_URI": remote_sdk.url,
        "PLINTH_TOKEN": remote_sdk.admin_token,
    }
    cmd = [sys.executable, "-m", "plinth.cli.main", "stream", "--model", "models:/iris/1", "--consumer", "far"]
    args = ["--source", f"{REDIS}/{source}", "--sink", f"{REDIS}/{sink}", "--block-ms", "100", "--max-entries", "3"]
    done = subprocess.run([*cmd, *args, "--json"], env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["acked"] == 3
    with remote_sdk.client(remote_sdk.admin_token) as c:
        (listed,) = c.get("/api/v1/stream-workers").json()
        assert (listed["consumer"], listed["state"], listed["acked"], listed["created_by"]) == (
            "far",
            "stopped",
            3,
            "admin",
        )
        assert c.get(f"/api/v1/stream-workers/{listed['id']}").json()["consumed"] == 3
        assert c.get("/api/v1/stream-workers/nope").status_code == 404
        page = c.get("/serving").text
    assert f'<tr data-worker="{listed["id"]}">' in page and '<td data-count="acked">3</td>' in page

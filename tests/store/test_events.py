"""The hash-chained event log on SQLite and PostgreSQL: chaining, tamper detection,
same-transaction emission, filters, and the follower that resumes by sequence number."""

from __future__ import annotations

import json
import threading
import time

import pytest
from sqlalchemy import func, select, text

from plinth.core.context import Actor, Context
from plinth.core.errors import Conflict
from plinth.core.platform import Platform
from plinth.governance import service as svc
from plinth.governance.tables import Project
from plinth.store.events import GENESIS_HASH, Event, EventHead, follow, read_events, verify_chain


def emit(
    platform: Platform, action: str, resource: str, summary: dict | None = None, **kw: object
) -> int:
    def fn(ctx: Context) -> int:
        return ctx.emit(action, resource, summary)

    return platform.caller(**kw).call(fn)  # type: ignore[arg-type]


def seed(platform: Platform, n: int = 5) -> list[int]:
    return [emit(platform, "thing.touch", f"runs:/r{i}", {"i": i}) for i in range(1, n + 1)]


def sql(platform: Platform, statement: str, **params: object) -> None:
    with platform.db.session() as session:
        session.execute(text(statement), params)


def report(platform: Platform, **kw: int):  # type: ignore[no-untyped-def]
    with platform.db.session() as session:
        return verify_chain(session, **kw)


def problems(platform: Platform) -> list[tuple[str, int]]:
    return [(p.kind, p.seq) for p in report(platform).problems]


def test_appended_events_form_a_chain(any_platform: Platform) -> None:
    any_platform.caller().call(svc.create_project, name="risk")
    assert seed(any_platform, 4) == [2, 3, 4, 5]
    with any_platform.db.session() as session:
        events = list(session.execute(select(Event).order_by(Event.seq)).scalars())
        head = session.get(EventHead, 1)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS_HASH
    for before, after in zip(events, events[1:], strict=False):
        assert after.prev_hash == before.hash
    assert all(e.hash == e.compute_hash() and len(e.hash) == 64 for e in events)
    assert len({e.hash for e in events}) == 5
    assert head is not None and (head.seq, head.hash) == (5, events[-1].hash)
    first = events[0]
    assert (first.actor, first.project, first.action, first.resource) == (
        "local",
        "risk",
        "project.create",
        "projects:/risk",
    )
    assert json.loads(events[1].summary) == {"i": 1}
    for batch in (2, 5000):  # the verifier reads in batches; the result does not depend on it
        r = report(any_platform, batch=batch)
        assert r.ok and r.problems == [] and r.checked == 5 and r.head_seq == 5


def test_empty_log_verifies(any_platform: Platform) -> None:
    r = report(any_platform)
    assert r.ok and r.checked == 0 and r.head_seq == 0 and r.head_hash == GENESIS_HASH


def test_editing_a_summary_by_sql_is_named(any_platform: Platform) -> None:
    seed(any_platform, 4)
    sql(any_platform, "UPDATE events SET summary = :s WHERE seq = 2", s='{"i":999}')
    r = report(any_platform)
    assert not r.ok and r.checked == 4
    assert [(p.kind, p.seq) for p in r.problems] == [("edited", 2)]
    assert r.problems[0].message == "event 2 was edited: its content does not match its hash"


def test_editing_and_rehashing_breaks_the_next_link(any_platform: Platform) -> None:
    seed(any_platform, 4)
    with any_platform.db.session() as session:
        ev = session.get(Event, 2)
        assert ev is not None
        ev.actor = "someone-else"
        ev.hash = ev.compute_hash()
    r = report(any_platform)
    assert [(p.kind, p.seq) for p in r.problems] == [("broken_link", 3)]
    assert "event 3 does not follow event 2" in r.problems[0].message


def test_deleting_a_middle_event_is_named(any_platform: Platform) -> None:
    seed(any_platform, 5)
    sql(any_platform, "DELETE FROM events WHERE seq IN (2, 3)")
    r = report(any_platform)
    assert [(p.kind, p.seq) for p in r.problems] == [("missing", 2)]
    assert r.problems[0].message == "events 2..3 are missing: removed from the log"


def test_deleting_the_first_event_is_named(any_platform: Platform) -> None:
    seed(any_platform, 3)
    sql(any_platform, "DELETE FROM events WHERE seq = 1")
    assert problems(any_platform) == [("missing", 1)]


def test_deleting_the_last_events_is_a_head_mismatch(any_platform: Platform) -> None:
    seed(any_platform, 5)
    sql(any_platform, "DELETE FROM events WHERE seq >= 4")
    r = report(any_platform)
    assert r.checked == 3
    assert [(p.kind, p.seq) for p in r.problems] == [("head_mismatch", 5)]
    assert "the log ends at event 3 but its head records event 5" in r.problems[0].message


def test_deleting_every_event_is_a_head_mismatch(any_platform: Platform) -> None:
    seed(any_platform, 2)
    sql(any_platform, "DELETE FROM events")
    assert problems(any_platform) == [("head_mismatch", 2)]


def test_appending_a_forged_event_by_sql_is_named(any_platform: Platform) -> None:
    seed(any_platform, 2)
    with any_platform.db.session() as session:
        last = session.get(Event, 2)
        assert last is not None
        forged = Event(
            seq=3,
            at=last.at,
            actor="intruder",
            project="default",
            action="x",
            resource="runs:/x",
            summary="{}",
            request_id=None,
            prev_hash=last.hash,
        )
        forged.hash = forged.compute_hash()
        session.add(forged)
    # The chain itself is consistent, but the head (updated only by append_event) disagrees.
    assert problems(any_platform) == [("head_mismatch", 2)]


def test_a_failed_call_leaves_no_event(any_platform: Platform) -> None:
    seed(any_platform, 2)
    with any_platform.db.session() as session:
        head_before = session.get(EventHead, 1)
        assert head_before is not None
        before = (head_before.seq, head_before.hash)

    def create_then_fail(ctx: Context) -> None:
        svc.create_project(ctx, name="doomed")
        assert ctx.emit("thing.extra", "runs:/x") == 4
        raise Conflict("changed my mind")

    with pytest.raises(Conflict, match="changed my mind"):
        any_platform.caller().call(create_then_fail)
    with any_platform.db.session() as session:
        assert session.execute(select(func.count()).select_from(Event)).scalar_one() == 2
        assert session.execute(select(Project).where(Project.name == "doomed")).scalar() is None
        head = session.get(EventHead, 1)
        assert head is not None and (head.seq, head.hash) == before
    assert report(any_platform).ok
    # The next change takes the sequence number the failed one did not keep.
    assert emit(any_platform, "thing.touch", "runs:/after") == 3
    assert report(any_platform).ok


def test_read_events_filters(any_platform: Platform) -> None:
    caller = any_platform.caller()
    caller.call(svc.create_project, name="risk")  # 1: project.create in risk
    emit(any_platform, "run.create", "runs:/a", project="risk")  # 2
    emit(any_platform, "run.update", "runs:/a", project="risk")  # 3
    emit(any_platform, "run.create", "runs:/b")  # 4: in default
    other = Actor(name="robot", is_admin=True)
    emit(any_platform, "model.create", "models:/m", actor=other)  # 5: by robot

    def seqs(**kw: object) -> list[int]:
        with any_platform.db.session() as session:
            return [e.seq for e in read_events(session, **kw)]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4, 5]
    assert seqs(after=3) == [4, 5]
    assert seqs(after=1, before=4) == [2, 3]
    assert seqs(limit=2) == [1, 2]
    assert seqs(descending=True, limit=2) == [5, 4]
    assert seqs(project="risk") == [1, 2, 3]
    assert seqs(project="default") == [4, 5]
    assert seqs(action="run.create") == [2, 4]
    assert seqs(action="run.*") == [2, 3, 4]
    assert seqs(resource="runs:/a") == [2, 3]
    assert seqs(actor="robot") == [5]
    assert seqs(actor="robot", project="risk") == []
    assert seqs(action="run.*", project="risk", after=2) == [3]
    assert seqs(after=5) == []


def test_follow_resumes_after_a_sequence_number(any_platform: Platform) -> None:
    seed(any_platform, 3)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def run(after: int) -> None:
        try:
            for ev in follow(
                any_platform.db.session, after=after, poll_interval=0.02, batch=2, stop=stop
            ):
                seen.append(ev.seq)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    follower = threading.Thread(target=run, args=(1,), daemon=True)
    follower.start()
    wait_for(lambda: seen == [2, 3])
    seed(any_platform, 2)  # 4 and 5 arrive while it follows
    wait_for(lambda: seen == [2, 3, 4, 5])
    stop.set()
    follower.join(timeout=10)
    assert not follower.is_alive() and errors == []
    assert seen == [2, 3, 4, 5]

    # A restarted follower that kept its last sequence number sees only what is new.
    emit(any_platform, "run.create", "runs:/new")
    emit(any_platform, "other.thing", "runs:/skip")
    stop2 = threading.Event()
    again = follow(
        any_platform.db.session, after=seen[-1], poll_interval=0.02, stop=stop2, action="run.*"
    )
    first = next(again)
    assert (first.seq, first.action, first.resource) == (6, "run.create", "runs:/new")
    stop2.set()
    assert list(again) == []


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the follower"
        time.sleep(0.01)

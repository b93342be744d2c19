"""The event log: append-only, hash-chained, one event per change, in the change's transaction.

Each event carries the hash of the one before it, and the single ``event_head`` row holds
the newest sequence number and hash. Appending locks that row, so the chain has no gaps
and no forks even with many writers. :func:`verify_chain` recomputes every hash and
says where an event was edited, removed or added by hand.
"""

from __future__ import annotations

import time as _time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from plinth.core.hashing import canonical_json, sha256_hex
from plinth.store.db import Base

__all__ = [
    "ChainProblem",
    "ChainReport",
    "Event",
    "EventHead",
    "append_event",
    "read_events",
    "verify_chain",
]

GENESIS_HASH = "0" * 64


class Event(Base):
    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    at: Mapped[str] = mapped_column(String(32))  # ISO-8601 UTC with microseconds
    actor: Mapped[str] = mapped_column(String(200))
    project: Mapped[str | None] = mapped_column(String(200), nullable=True)
    action: Mapped[str] = mapped_column(String(100))
    resource: Mapped[str] = mapped_column(String(1000))
    summary: Mapped[str] = mapped_column(Text)  # canonical JSON
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_events_project_seq", "project", "seq"),
        Index("ix_events_resource", "resource"),
    )

    def payload(self) -> dict[str, Any]:
        """What the hash covers: everything but the hash itself."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "project": self.project,
            "action": self.action,
            "resource": self.resource,
            "summary": self.summary,
            "request_id": self.request_id,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        return sha256_hex(canonical_json(self.payload()).encode())


class EventHead(Base):
    """One row: the newest sequence number and its hash. Appends lock it."""

    __tablename__ = "event_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append_event(
    session: Session,
    *,
    actor: str,
    project: str | None,
    action: str,
    resource: str,
    summary: dict[str, Any] | None,
    request_id: str | None,
    at: datetime,
) -> Event:
    """Append one event and move the head, in the session's transaction.

    Written with plain INSERT/UPDATE statements (no ORM unit of work): one event per change
    makes this the one write every change shares, and the flush of two ORM objects cost about
    as much as the rest of a small change. The returned ``Event`` is detached.
    """
    head_t = EventHead.__table__
    head = session.execute(select(head_t.c.seq, head_t.c.hash).where(head_t.c.id == 1).with_for_update()).one_or_none()
    if head is None:  # the migration seeds it; a hand-made schema may not have
        seq, prev = 0, GENESIS_HASH
        session.execute(insert(head_t).values(id=1, seq=0, hash=GENESIS_HASH))
    else:
        seq, prev = head
    ev = Event(
        seq=seq + 1,
        at=utc_iso(at),
        actor=actor,
        project=project,
        action=action,
        resource=resource,
        summary=canonical_json(summary or {}),
        request_id=request_id,
        prev_hash=prev,
    )
    ev.hash = ev.compute_hash()
    row = ev.payload()
    row["hash"] = ev.hash
    session.execute(insert(Event.__table__).values(row))
    session.execute(update(head_t).where(head_t.c.id == 1).values(seq=ev.seq, hash=ev.hash))
    return ev


def read_events(
    session: Session,
    *,
    after: int = 0,
    limit: int = 100,
    project: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    actor: str | None = None,
    descending: bool = False,
    before: int | None = None,
) -> list[Event]:
    """Events after a sequence number (the change feed), optionally filtered."""
    q = select(Event).where(Event.seq > after)
    if before is not None:
        q = q.where(Event.seq < before)
    if project is not None:
        q = q.where(Event.project == project)
    if action is not None:
        q = q.where(Event.action.like(action.replace("*", "%")) if "*" in action else Event.action == action)
    if resource is not None:
        q = q.where(Event.resource == resource)
    if actor is not None:
        q = q.where(Event.actor == actor)
    q = q.order_by(Event.seq.desc() if descending else Event.seq).limit(limit)
    return list(session.execute(q).scalars())


@dataclass
class ChainProblem:
    seq: int
    kind: str  # edited | missing | broken_link | head_mismatch
    message: str


@dataclass
class ChainReport:
    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    problems: list[ChainProblem] = field(default_factory=list)


def verify_chain(session: Session, batch: int = 5000, max_problems: int = 100) -> ChainReport:
    """Recompute the chain from the first event; name each place it was altered."""
    problems: list[ChainProblem] = []
    expected_seq, prev_hash, checked, after = 1, GENESIS_HASH, 0, 0
    while True:
        rows = list(session.execute(select(Event).where(Event.seq > after).order_by(Event.seq).limit(batch)).scalars())
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                problems.append(
                    ChainProblem(
                        expected_seq,
                        "missing",
                        f"events {expected_seq}..{ev.seq - 1} are missing: removed from the log",
                    )
                )
            if ev.compute_hash() != ev.hash:
                problems.append(
                    ChainProblem(ev.seq, "edited", f"event {ev.seq} was edited: its content does not match its hash")
                )
            elif ev.prev_hash != prev_hash and ev.seq == expected_seq:
                problems.append(
                    ChainProblem(
                        ev.seq,
                        "broken_link",
                        f"event {ev.seq} does not follow event {ev.seq - 1}: "
                        "the event before it was edited or replaced",
                    )
                )
            prev_hash, expected_seq, after = ev.hash, ev.seq + 1, ev.seq
            checked += 1
            if len(problems) >= max_problems:
                break
        if len(problems) >= max_problems:
            break
    head = session.get(EventHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if len(problems) < max_problems and (head_seq != expected_seq - 1 or head_hash != prev_hash):
        problems.append(
            ChainProblem(
                head_seq,
                "head_mismatch",
                f"the log ends at event {expected_seq - 1} but its head records event {head_seq}: "
                "events at the end were removed, or the head was altered",
            )
        )
    return ChainReport(not problems, checked, head_seq, head_hash, problems)


def follow(
    open_session: Any,
    *,
    after: int = 0,
    poll_interval: float = 0.5,
    batch: int = 500,
    stop: Any = None,
    **filters: Any,
) -> Iterator[Event]:
    """Yield events forever (or until ``stop.is_set()``), resuming after ``after``.

    ``open_session`` is a context-manager factory such as ``Database.session``. A follower
    that keeps the last sequence number it handled resumes where it stopped after a restart.
    """
    while stop is None or not stop.is_set():
        with open_session() as session:
            rows = read_events(session, after=after, limit=batch, **filters)
            session.expunge_all()
        for ev in rows:
            after = ev.seq
            yield ev
        if len(rows) < batch:
            _time.sleep(poll_interval)

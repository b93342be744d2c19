"""Tables of the tracking area: experiments, runs, params, tags, metric history, latest metrics.

Latest metric values are double precision with NaN stored as NULL on every backend:
SQLite turns NaN into NULL on its own, and doing the same on PostgreSQL keeps filters
alike on both (PostgreSQL would otherwise sort NaN above every number); ±inf are kept.
The history keeps every value's exact bits, NaN included, in packed chunks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from plinth.store.db import Base
from plinth.store.types import UTCDateTime

KEY_LENGTH = 250


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_experiment_project_name"),)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    name: Mapped[str] = mapped_column(String(KEY_LENGTH))
    status: Mapped[str] = mapped_column(String(16))  # running | finished | failed | killed
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        # (…, start_time, id) matches the default order, so a first page walks the index and stops.
        Index("ix_runs_experiment_start", "experiment_id", "start_time", "id"),
        Index("ix_runs_project_start", "project_id", "start_time", "id"),
        Index("ix_runs_parent", "parent_id"),
    )


class RunParam(Base):
    __tablename__ = "run_params"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    # By key only: PostgreSQL refuses btree entries over ~2.7 kB, and values may be 8 kB.
    __table_args__ = (Index("ix_run_params_key", "key"),)


class RunTag(Base):
    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

    # By key only: PostgreSQL refuses btree entries over ~2.7 kB, and values may be 8 kB.
    __table_args__ = (Index("ix_run_tags_key", "key"),)


class MetricChunk(Base):
    """The full history, in chunks: the points of one key that arrived in one batch.

    Steps, timestamps and values are packed little-endian arrays (int64, int64, float64),
    sorted by step then time. A batch of any size costs one row per key, so ingest runs
    near the database's raw insert speed, and NaN keeps its bits on every backend.
    """

    __tablename__ = "metric_chunks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    first_step: Mapped[int] = mapped_column(BigInteger)
    last_step: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    steps: Mapped[bytes] = mapped_column(LargeBinary)
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)  # milliseconds since the epoch
    values: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_metric_chunks_run_key_step", "run_id", "key", "first_step"),)


class LatestMetric(Base):
    """The newest point (highest step, then timestamp) per run and key, kept on ingest."""

    __tablename__ = "latest_metrics"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Double, nullable=True)  # NULL is NaN

    # (key, value, run_id): ordering runs by a metric walks this index (ties by run id).
    __table_args__ = (Index("ix_latest_metrics_key_value", "key", "value", "run_id"),)

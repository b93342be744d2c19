"""Tables of serving: deployments (which model versions serve, with what traffic policy), batch
inference jobs (who scored which dataset version with which model, and how it went), and
streaming workers (which consumer scores which stream, its counts and last heartbeat)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from plinth.core.errors import NotFound
from plinth.store.db import Base
from plinth.store.types import UTCDateTime

if TYPE_CHECKING:
    from plinth.core.context import Context

Row = TypeVar("Row", "Deployment", "BatchJob", "StreamWorkerRecord")


class Deployment(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    traffic: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{uri, weight}], weights sum to 100
    shadow: Mapped[str | None] = mapped_column(String(1100), nullable=True)  # mirrored, never returned
    # sticky A/B: requests carrying the same value of this key always reach the same version
    sticky_key: Mapped[str | None] = mapped_column(String(100), nullable=True)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    # what `plinth serve --features` takes: features:/SERVICE or view:feature references
    features: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    missing_features: Mapped[str] = mapped_column(String(10), default="error")  # error | null
    # Kubernetes' shape: {"requests": {"cpu": "500m"}, "limits": {"memory": "2Gi"}} (see serving.resources)
    resources: Mapped[dict[str, dict[str, str]] | None] = mapped_column(JSON, nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # created | serving | stopped | failed
    status_message: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_deployment_name"),)


class BatchJob(Base):
    """One batch inference: a dataset version scored by a model version into a new dataset version."""

    __tablename__ = "batch_jobs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20))  # queued | running | succeeded | failed
    model: Mapped[str] = mapped_column(String(1100))  # pinned: models:/<name>/<version> or runs:/<id>/<path>
    input: Mapped[str] = mapped_column(String(1100))  # pinned: datasets:/<name>/<version>
    output: Mapped[str] = mapped_column(String(100))  # the dataset the predictions become a version of
    output_version: Mapped[str | None] = mapped_column(String(1100), nullable=True)  # set on success
    options: Mapped[dict[str, Any]] = mapped_column(JSON)  # executor, workers, batch_size, keep_columns, tags
    rows: Mapped[int] = mapped_column(Integer, default=0)  # scored so far
    total_rows: Mapped[int | None] = mapped_column(Integer, nullable=True)  # of the input version
    error: Mapped[str] = mapped_column(Text, default="")
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    runner: Mapped[str] = mapped_column(String(200))  # host:pid of the process running it
    trust: Mapped[bool] = mapped_column(Boolean, default=False)
    seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_batch_jobs_project_created", "project_id", "created_at"),)


class StreamWorkerRecord(Base):
    """One streaming inference consumer (``plinth stream``): what it reads and writes, its counts."""

    __tablename__ = "stream_workers"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(1100))  # redis://host:port/db/key, without credentials
    group: Mapped[str] = mapped_column(String(200))
    consumer: Mapped[str] = mapped_column(String(200))
    sink: Mapped[str] = mapped_column(String(1100))
    model: Mapped[str] = mapped_column(String(1100))  # the version that scores: models:/<name>/<version>
    state: Mapped[str] = mapped_column(String(20))  # running | stopped | failed
    runner: Mapped[str] = mapped_column(String(200))  # host:pid
    counts: Mapped[dict[str, int]] = mapped_column(JSON)  # consumed, acked, predicted, dead, reclaimed, batches
    error: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (UniqueConstraint("project_id", "source", "group", "consumer", name="uq_stream_worker_consumer"),)


def project_row(ctx: Context, table: type[Row], noun: str, column: str, value: str) -> Row:
    """The row of ``table`` in the context's project whose ``column`` is ``value``; NotFound naming
    the ``noun`` (``batch job 'x' does not exist in project 'p'``) otherwise."""
    row = ctx.session.execute(
        select(table).where(table.project_id == ctx.project_id(), getattr(table, column) == value)
    ).scalar()
    if row is None:
        raise NotFound(f"{noun} {value!r} does not exist in project {ctx.project!r}", **{noun.replace(" ", "_"): value})
    return row

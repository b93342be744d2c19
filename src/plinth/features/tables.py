"""Feature store metadata: versioned definitions, writes to the online store (materialize
and push, for freshness and ``materialize_incremental``), and training sets (for usage).

Values themselves live in the sources (offline) and in the online store (SQLite or Redis).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plinth.store.db import Base
from plinth.store.types import UTCDateTime


class FeatureDefinition(Base):
    """One entity, feature view, on-demand feature view or feature service, by name.

    ``namespace`` is ``entities`` for entities and ``features`` for the rest: views and
    services share one namespace, so ``features:/<name>`` names exactly one of them.
    """

    __tablename__ = "feature_definitions"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    namespace: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(30))
    name: Mapped[str] = mapped_column(String(100))
    latest_version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("project_id", "namespace", "name", name="uq_feature_definition_name"),
        Index("ix_feature_definitions_kind", "project_id", "kind"),
    )


class FeatureDefinitionVersion(Base):
    __tablename__ = "feature_definition_versions"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    definition_id: Mapped[str] = mapped_column(ForeignKey("feature_definitions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_hash: Mapped[str] = mapped_column(String(64))
    # Derived at apply, not given by the user: e.g. the source's join key types.
    resolved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("definition_id", "version", name="uq_feature_definition_version"),)


class FeatureOnlineWrite(Base):
    """One materialization or push into the online store."""

    __tablename__ = "feature_online_writes"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    view_id: Mapped[str] = mapped_column(ForeignKey("feature_definitions.id", ondelete="CASCADE"))
    view_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))  # materialize | push
    store: Mapped[str] = mapped_column(String(500))
    start_ts: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_ts: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rows_read: Mapped[int] = mapped_column(BigInteger)
    entities_written: Mapped[int] = mapped_column(BigInteger)
    max_event_ts: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    source_ref: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_feature_online_writes_view", "view_id", "created_at"),)


class TrainingSet(Base):
    """A point-in-time join written as a dataset version, and what it was made of."""

    __tablename__ = "feature_training_sets"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    dataset_ref: Mapped[str] = mapped_column(String(300))  # datasets:/<name>/<version>
    features: Mapped[list[str]] = mapped_column(JSON)
    views: Mapped[list[str]] = mapped_column(JSON)  # features:/<view>/<version>
    feature_service: Mapped[str | None] = mapped_column(String(100), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    entity_rows: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_feature_training_sets_project", "project_id", "created_at"),)

"""Artifact metadata: a user-visible name under an owner, pointing at a content-addressed blob."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plinth.store.db import Base
from plinth.store.types import UTCDateTime


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(String(500))  # a reference such as runs:/<id>
    name: Mapped[str] = mapped_column(String(1024))  # metadata only, never a filesystem path
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(200), default="application/octet-stream")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("project_id", "owner", "name", name="uq_artifact_owner_name"),
        Index("ix_artifacts_owner", "project_id", "owner"),
    )

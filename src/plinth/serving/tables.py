"""Tables of serving: deployments (which model versions serve, with what traffic policy)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from plinth.store.db import Base
from plinth.store.types import UTCDateTime


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
    status: Mapped[str] = mapped_column(String(20))  # created | serving | stopped | failed
    status_message: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_deployment_name"),)

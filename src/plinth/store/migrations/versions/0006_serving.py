"""serving: deployments

Revision ID: 0006_serving
Revises: 0005_features
Create Date: 2026-11-27 10:25:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plinth.store.types

revision = "0006_serving"
down_revision = "0005_features"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("project_id", sa.String(length=26), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("traffic", sa.JSON(), nullable=False),
        sa.Column("shadow", sa.String(length=1100), nullable=True),
        sa.Column("replicas", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", plinth.store.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", plinth.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "name", name="uq_deployment_name"),
    )


def downgrade() -> None:
    op.drop_table("deployments")

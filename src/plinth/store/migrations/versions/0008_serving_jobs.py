"""serving: batch inference jobs, streaming workers; a deployment's features

Revision ID: 0008_serving_jobs
Revises: 0007_serving_sticky
Create Date: 2026-11-27 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import plinth.store.types

revision = "0008_serving_jobs"
down_revision = "0007_serving_sticky"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_jobs",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("project_id", sa.String(length=26), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=1100), nullable=False),
        sa.Column("input", sa.String(length=1100), nullable=False),
        sa.Column("output", sa.String(length=100), nullable=False),
        sa.Column("output_version", sa.String(length=1100), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("runner", sa.String(length=200), nullable=False),
        sa.Column("trust", sa.Boolean(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("created_at", plinth.store.types.UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("started_at", plinth.store.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", plinth.store.types.UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", plinth.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_batch_jobs_project_created", "batch_jobs", ["project_id", "created_at"])
    op.create_table(
        "stream_workers",
        sa.Column("id", sa.String(length=26), nullable=False),
        sa.Column("project_id", sa.String(length=26), nullable=False),
        sa.Column("source", sa.String(length=1100), nullable=False),
        sa.Column("group", sa.String(length=200), nullable=False),
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("sink", sa.String(length=1100), nullable=False),
        sa.Column("model", sa.String(length=1100), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("runner", sa.String(length=200), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("started_at", plinth.store.types.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", plinth.store.types.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", plinth.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "source", "group", "consumer", name="uq_stream_worker_consumer"),
    )
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("features", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("missing_features", sa.String(length=10), nullable=False, server_default="error"))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("missing_features")
        batch.drop_column("features")
    op.drop_table("stream_workers")
    op.drop_index("ix_batch_jobs_project_created", table_name="batch_jobs")
    op.drop_table("batch_jobs")

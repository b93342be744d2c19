"""serving: a deployment's compute resources (requests and limits)

Revision ID: 0009_deployment_resources
Revises: 0008_serving_jobs
Create Date: 2026-11-27 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_deployment_resources"
down_revision = "0008_serving_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("resources", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("resources")

"""serving: sticky A/B by a request key

Revision ID: 0007_serving_sticky
Revises: 0006_serving
Create Date: 2026-11-27 12:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_serving_sticky"
down_revision = "0006_serving"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("sticky_key", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.drop_column("sticky_key")

"""leases: which process runs the background tasks

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-14 22:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import stellarstack.panel.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column(
            "expires_at", stellarstack.panel.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")

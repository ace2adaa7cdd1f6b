"""registry: migrate_runs, one row per `tenantry migrate` run (for /metrics)

Revision ID: shared_ops_0001_migrate_runs
Revises: shared_0002_archive
Create Date: 2026-11-25

A shared-schema revision: it names the registry schema explicitly.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shared_ops_0001_migrate_runs"
down_revision: str | Sequence[str] | None = "shared_0002_archive"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tenantry"


def upgrade() -> None:
    op.create_table(
        "migrate_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "finished_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("tenants_failed", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("migrate_runs", schema=SCHEMA)

"""registry: per-tenant rate limit (NULL: the settings' default)

Revision ID: shared_ops_0002_rate_limits
Revises: shared_ops_0001_migrate_runs
Create Date: 2026-11-25

A shared-schema revision: it names the registry schema explicitly.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shared_ops_0002_rate_limits"
down_revision: str | Sequence[str] | None = "shared_ops_0001_migrate_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tenantry"


def upgrade() -> None:
    op.add_column("tenants", sa.Column("rate_limit_per_second", sa.Float()), schema=SCHEMA)
    op.add_column("tenants", sa.Column("rate_limit_burst", sa.Integer()), schema=SCHEMA)
    op.create_check_constraint(
        "tenants_rate_limit_per_second_check",
        "tenants",
        "rate_limit_per_second > 0",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "tenants_rate_limit_burst_check", "tenants", "rate_limit_burst >= 1", schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_column("tenants", "rate_limit_burst", schema=SCHEMA)
    op.drop_column("tenants", "rate_limit_per_second", schema=SCHEMA)

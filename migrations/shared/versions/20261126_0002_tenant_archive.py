"""tenant archive: an 'archived' status and where the archived schema went

Revision ID: shared_0002_archive
Revises: shared_0001
Create Date: 2026-11-26

A shared-schema revision: it names the registry schema explicitly. `tenantry tenants drop`
renames a tenant's schema out of the tenant namespace and records it here; `restore` reads it
back. Downgrading refuses while any tenant is archived (the old status check rejects the row).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "shared_0002_archive"
down_revision: str | Sequence[str] | None = "shared_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tenantry"

ARCHIVE_COLUMNS_SET_TOGETHER = (
    "(status = 'archived') = (archived_at IS NOT NULL)"
    " AND (status = 'archived') = (archived_schema IS NOT NULL)"
    " AND (status = 'archived') = (status_before_archive IS NOT NULL)"
)


def upgrade() -> None:
    op.add_column("tenants", sa.Column("archived_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("tenants", sa.Column("archived_schema", sa.Text()), schema=SCHEMA)
    op.add_column("tenants", sa.Column("status_before_archive", sa.Text()), schema=SCHEMA)
    op.create_unique_constraint(
        "tenants_archived_schema_key", "tenants", ["archived_schema"], schema=SCHEMA
    )
    op.drop_constraint("tenants_status_check", "tenants", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "tenants_status_check",
        "tenants",
        "status IN ('active', 'suspended', 'archived')",
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "tenants_archive_check", "tenants", ARCHIVE_COLUMNS_SET_TOGETHER, schema=SCHEMA
    )
    op.create_check_constraint(
        "tenants_status_before_archive_check",
        "tenants",
        "status_before_archive IN ('active', 'suspended')",
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_constraint(
        "tenants_status_before_archive_check", "tenants", schema=SCHEMA, type_="check"
    )
    op.drop_constraint("tenants_archive_check", "tenants", schema=SCHEMA, type_="check")
    op.drop_constraint("tenants_status_check", "tenants", schema=SCHEMA, type_="check")
    op.create_check_constraint(
        "tenants_status_check", "tenants", "status IN ('active', 'suspended')", schema=SCHEMA
    )
    op.drop_constraint("tenants_archived_schema_key", "tenants", schema=SCHEMA, type_="unique")
    op.drop_column("tenants", "status_before_archive", schema=SCHEMA)
    op.drop_column("tenants", "archived_schema", schema=SCHEMA)
    op.drop_column("tenants", "archived_at", schema=SCHEMA)

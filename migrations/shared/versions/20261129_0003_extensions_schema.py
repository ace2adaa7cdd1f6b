"""extensions schema: one shared, read-only schema for extensions, on every tenant's path

Revision ID: shared_0003_extensions
Revises: shared_ops_0002_rate_limits
Create Date: 2026-11-29

A shared-schema revision. Extensions (`CREATE EXTENSION citext SCHEMA extensions`, in a shared
revision of your own) go here; every tenant transaction's search_path is its own schema, then
this one (tenancy.naming.tenant_search_path), so extension types, functions and operators
resolve in tenant revisions and requests. Everyone may use it; no one but its owner (the
migrating role) may create anything in it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "shared_0003_extensions"
down_revision: str | Sequence[str] | None = "shared_ops_0002_rate_limits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "extensions"


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    op.execute(f"REVOKE ALL ON SCHEMA {SCHEMA} FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO PUBLIC")


def downgrade() -> None:
    op.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} RESTRICT")

"""A tenant's registry row, locked for the length of one lifecycle operation."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.lifecycle.errors import TenantStateConflict, UnknownTenant
from tenancy.naming import checked_archive_schema, checked_schema
from tenancy.registry import ARCHIVED, tenants


@dataclass(frozen=True, slots=True)
class TenantRecord:
    id: int
    slug: str
    schema: str
    status: str
    archived_at: datetime | None
    archived_schema: str | None
    status_before_archive: str | None

    @property
    def is_archived(self) -> bool:
        return self.status == ARCHIVED

    def refuse_if_archived(self) -> None:
        if self.is_archived:
            raise TenantStateConflict(f"tenant {self.slug!r} is archived; restore it first")

    def archived_in(self, action: str = "restore") -> str:
        """The schema an archived tenant sits in; anything else may not be restored or purged."""
        if self.archived_schema is None:
            if action == "restore":
                raise TenantStateConflict(
                    f"tenant {self.slug!r} is not archived ({self.status}): nothing to restore"
                )
            raise TenantStateConflict(
                f"tenant {self.slug!r} is not archived ({self.status}): only an archived tenant "
                f"can be {action}d; `tenants drop {self.slug} --yes` archives it"
            )
        return self.archived_schema


async def schema_present(conn: AsyncConnection, schema: str) -> bool:
    """Whether the database has this schema (a registered tenant's may have been dropped by
    hand, or lost in a partial restore)."""
    found = await conn.scalar(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :schema"), {"schema": schema}
    )
    return found is not None


async def locked_tenant(conn: AsyncConnection, slug: str) -> TenantRecord:
    """SELECT ... FOR UPDATE: concurrent lifecycle operations on one tenant run one at a time."""
    row = (
        await conn.execute(
            select(
                tenants.c.id,
                tenants.c.slug,
                tenants.c.schema_name,
                tenants.c.status,
                tenants.c.archived_at,
                tenants.c.archived_schema,
                tenants.c.status_before_archive,
            )
            .where(tenants.c.slug == slug)
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        raise UnknownTenant(f"unknown tenant {slug!r}")
    return TenantRecord(
        id=row.id,
        slug=row.slug,
        schema=checked_schema(row.schema_name),
        status=row.status,
        archived_at=row.archived_at,
        archived_schema=(
            checked_archive_schema(row.archived_schema) if row.archived_schema else None
        ),
        status_before_archive=row.status_before_archive,
    )

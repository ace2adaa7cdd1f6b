"""Offboarding that never loses data by accident: archive, restore, and (only then) purge.

Archiving renames the schema out of the tenant namespace (`naming.archive_schema`), marks the
registry row archived and revokes the keys; requests get 401 at once. Restoring undoes exactly
that, keys included. Purging drops an archived schema for good and frees the slug.
"""

from dataclasses import dataclass

from sqlalchemy import delete, func, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.lifecycle.catchup import bring_to_head
from tenancy.lifecycle.errors import TenantStateConflict
from tenancy.lifecycle.records import locked_tenant
from tenancy.migrate.tracks import Tracks
from tenancy.naming import archive_schema, quote_archive_schema, quote_schema
from tenancy.registry import ARCHIVED, announce_change, api_keys, tenants


@dataclass(frozen=True, slots=True)
class ArchiveChange:
    slug: str
    schema: str
    archived_schema: str
    keys: int
    """Keys revoked by the archive, or brought back by the restore."""


async def archive_tenant(engine: AsyncEngine, slug: str) -> ArchiveChange:
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        if tenant.is_archived:
            raise TenantStateConflict(f"tenant {slug!r} is already archived")
        archived = archive_schema(tenant.id, slug)
        await _rename_schema(conn, quote_schema(tenant.schema), quote_archive_schema(archived))
        await conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant.id)
            .values(
                status=ARCHIVED,
                status_before_archive=tenants.c.status,
                archived_at=func.now(),
                archived_schema=archived,
            )
        )
        revoked = await conn.execute(
            update(api_keys)
            .where(api_keys.c.tenant_id == tenant.id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
        )
        await announce_change(conn, slug)
    return ArchiveChange(slug, tenant.schema, archived, revoked.rowcount)


async def restore_tenant(engine: AsyncEngine, tracks: Tracks, slug: str) -> ArchiveChange:
    """Back under its tenant schema name, at head, with its old status and the keys the archive
    revoked (keys revoked before the archive stay revoked)."""
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        archived = tenant.archived_in()
        await _rename_schema(conn, quote_archive_schema(archived), quote_schema(tenant.schema))
        await bring_to_head(conn, tracks, tenant.schema)
        await conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant.id)
            .values(
                status=tenants.c.status_before_archive,
                status_before_archive=None,
                archived_at=None,
                archived_schema=None,
            )
        )
        restored = await conn.execute(
            update(api_keys)
            .where(api_keys.c.tenant_id == tenant.id, api_keys.c.revoked_at == tenant.archived_at)
            .values(revoked_at=None)
        )
        await announce_change(conn, slug)
    return ArchiveChange(slug, tenant.schema, archived, restored.rowcount)


async def purge_tenant(engine: AsyncEngine, slug: str) -> str:
    """Drop an archived tenant's schema and registry row for good; returns the dropped schema."""
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        archived = tenant.archived_in("purge")
        quoted = quote_archive_schema(archived)
        await conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quoted} CASCADE")
        await conn.execute(delete(tenants).where(tenants.c.id == tenant.id))
        await announce_change(conn, slug)
    return archived


async def _rename_schema(conn: AsyncConnection, quoted_from: str, quoted_to: str) -> None:
    await conn.exec_driver_sql(f"ALTER SCHEMA {quoted_from} RENAME TO {quoted_to}")

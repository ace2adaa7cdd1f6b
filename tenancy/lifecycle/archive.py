"""Offboarding that never loses data by accident: archive, restore, and (only then) purge.

Archiving renames the schema out of the tenant namespace (`naming.archive_schema`), takes every
privilege of the runtime role off it, marks the registry row archived and revokes the keys;
requests get 401 at once. Restoring undoes exactly that, keys and grants included.
Purging drops an archived schema for good and frees the slug.
"""

from dataclasses import dataclass

from sqlalchemy import delete, func, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.lifecycle.catchup import bring_to_head, refuse_if_behind
from tenancy.lifecycle.driver import driver_connection
from tenancy.lifecycle.errors import SchemaMissing, TenantStateConflict
from tenancy.lifecycle.records import locked_tenant, schema_present
from tenancy.migrate.tracks import Tracks
from tenancy.naming import archive_schema, quote_archive_schema, quote_schema
from tenancy.registry import ARCHIVED, announce_change, api_keys, tenants
from tenancy.roles import grant_runtime, revoke_runtime


@dataclass(frozen=True, slots=True)
class ArchiveChange:
    slug: str
    schema: str
    archived_schema: str
    keys: int
    """Keys revoked by the archive, or brought back by the restore."""
    schema_missing: bool = False
    """The archive found no schema to move (dropped by hand): only the registry row changed."""


@dataclass(frozen=True, slots=True)
class PurgedTenant:
    slug: str
    schema: str
    """The schema dropped: its archive, or its tenant schema when that was already gone."""
    schema_missing: bool = False
    """There was no schema left: only the registry row and its keys were deleted."""


async def archive_tenant(engine: AsyncEngine, slug: str) -> ArchiveChange:
    """Rename the schema out of reach, mark the row archived, revoke the keys, in one
    transaction. A tenant whose schema is already gone is archived all the same (its row and
    keys), with `schema_missing` set: there is nothing to keep, and `purge` then deletes it."""
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        if tenant.is_archived:
            raise TenantStateConflict(f"tenant {slug!r} is already archived")
        archived = archive_schema(tenant.id, slug)
        missing = not await schema_present(conn, tenant.schema)
        if not missing:
            if await schema_present(conn, archived):
                raise TenantStateConflict(
                    f"schema {archived} already exists: rename or drop it before archiving"
                )
            await _rename_schema(conn, quote_schema(tenant.schema), quote_archive_schema(archived))
            await revoke_runtime(await driver_connection(conn), quote_archive_schema(archived))
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
    return ArchiveChange(slug, tenant.schema, archived, revoked.rowcount, missing)


async def restore_tenant(engine: AsyncEngine, tracks: Tracks, slug: str) -> ArchiveChange:
    """Back under its tenant schema name, at head, with its old status and the keys the archive
    revoked (keys revoked before the archive stay revoked). Raises ProcessBehind when this
    process's revisions are older than the deployed ones or the tenant's, SchemaMissing when
    the archive holds no schema (nothing to restore), TenantStateConflict when the tenant
    schema's name is taken."""
    refuse_if_behind(tracks)
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        archived = tenant.archived_in()
        if not await schema_present(conn, archived):
            raise SchemaMissing(
                f"tenant {slug!r} has no schema to restore ({archived} is gone): "
                f"`tenantry tenants purge {slug} --yes` deletes its registry row"
            )
        if await schema_present(conn, tenant.schema):
            raise TenantStateConflict(
                f"schema {tenant.schema} already exists: rename or drop it before restoring"
            )
        await _rename_schema(conn, quote_archive_schema(archived), quote_schema(tenant.schema))
        await bring_to_head(conn, tracks, tenant.schema)
        await grant_runtime(await driver_connection(conn), tenant.schema)
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


async def purge_tenant(engine: AsyncEngine, slug: str) -> PurgedTenant:
    """Drop an archived tenant's schema and registry row for good.

    A tenant that is not archived is refused (TenantStateConflict: archive it first), unless its
    schema is already gone: then there is no data to protect, and the row and its keys go.
    """
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        if tenant.is_archived:
            dropped = tenant.archived_in("purge")
            missing = not await schema_present(conn, dropped)
            await conn.exec_driver_sql(
                f"DROP SCHEMA IF EXISTS {quote_archive_schema(dropped)} CASCADE"
            )
        elif await schema_present(conn, tenant.schema):
            tenant.archived_in("purge")  # raises: only an archived tenant can be purged
        else:
            dropped, missing = tenant.schema, True
        await conn.execute(delete(tenants).where(tenants.c.id == tenant.id))
        await announce_change(conn, slug)
    return PurgedTenant(slug, dropped, missing)


async def _rename_schema(conn: AsyncConnection, quoted_from: str, quoted_to: str) -> None:
    await conn.exec_driver_sql(f"ALTER SCHEMA {quoted_from} RENAME TO {quoted_to}")

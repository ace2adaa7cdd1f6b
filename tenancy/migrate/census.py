"""Who is at which revision: every tenant's version row read in one pass.

The registry gives the schemas; one catalog query says which of them exist and have a version
table; then `UNION ALL` queries over the tenants' `alembic_version` tables, a few hundred
tables each (one statement would hold a lock per table and overflow the lock table), spread
over the run's connections. No Alembic context is built for anyone.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from tenancy.lifecycle.errors import UnknownTenant
from tenancy.live_tenants import live_tenants_query
from tenancy.migrate.connections import side_by_side
from tenancy.naming import REGISTRY_SCHEMA, checked_schema, quote_schema

CHUNK = 250
"""Version tables per query: keeps the locks one statement holds well under the lock table."""

_VERSION_TABLES = """
SELECT s.name, n.oid IS NOT NULL AS has_schema, c.oid IS NOT NULL AS has_version_table
FROM unnest($1::text[]) AS s(name)
LEFT JOIN pg_namespace n ON n.nspname = s.name
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'alembic_version'
    AND c.relkind = 'r'
"""
_SHARED_VERSION_TABLE = f"{REGISTRY_SCHEMA}.alembic_version"


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: int
    slug: str
    schema: str


@dataclass(frozen=True, slots=True)
class TenantVersion:
    """A tenant and the revision its schema is at (None: base, or no version table yet)."""

    tenant: TenantRef
    revision: str | None
    problem: str | None = None
    """Why the revision could not be read (missing schema, several version rows)."""
    schema_missing: bool = False
    """The registry names a schema the database does not have (dropped by hand?)."""


def missing_schema(tenant: TenantRef) -> TenantVersion:
    """A registered tenant without its schema, with the commands that settle it."""
    return TenantVersion(
        tenant,
        None,
        f"schema {tenant.schema} is missing: `tenantry tenants drop {tenant.slug} --yes` "
        f"archives its registry row, then `tenantry tenants purge {tenant.slug} --yes` "
        "deletes it",
        schema_missing=True,
    )


async def registered_tenants(
    conn: asyncpg.Connection, slugs: Sequence[str] = ()
) -> list[TenantRef]:
    """Live tenants from the registry (all, or the named ones; tenancy.live_tenants); unknown or
    archived slugs raise UnknownTenant."""
    sql, args = live_tenants_query(slugs)
    rows = await conn.fetch(sql, *args)
    missing = set(slugs) - {row["slug"] for row in rows}
    if missing:
        raise UnknownTenant(f"unknown or archived tenant(s): {', '.join(sorted(missing))}")
    return [TenantRef(row["id"], row["slug"], checked_schema(row["schema_name"])) for row in rows]


async def shared_revision(conn: asyncpg.Connection) -> str | None:
    """The registry schema's revision (None on a database never migrated)."""
    if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", _SHARED_VERSION_TABLE):
        return None
    return await conn.fetchval(f"SELECT version_num FROM {_SHARED_VERSION_TABLE}")


async def read_versions(
    connections: Sequence[asyncpg.Connection], tenants: Sequence[TenantRef]
) -> list[TenantVersion]:
    """Every tenant's revision, in registry order, with chunks spread over the connections."""
    layout = await connections[0].fetch(_VERSION_TABLES, [t.schema for t in tenants])
    versions: dict[str, TenantVersion] = {}
    readable: list[TenantRef] = []
    found = {row["name"]: row for row in layout}
    for tenant in tenants:
        row = found[tenant.schema]
        if not row["has_schema"]:
            versions[tenant.schema] = missing_schema(tenant)
        elif not row["has_version_table"]:
            versions[tenant.schema] = TenantVersion(tenant, None)
        else:
            readable.append(tenant)
    chunks = [readable[i : i + CHUNK] for i in range(0, len(readable), CHUNK)]

    async def read_chunks(conn: asyncpg.Connection, share: list[list[TenantRef]]) -> None:
        for chunk in share:
            for version in await _read_chunk(conn, chunk):
                versions[version.tenant.schema] = version

    lanes = len(connections)
    await side_by_side(*(read_chunks(c, chunks[i::lanes]) for i, c in enumerate(connections)))
    return [versions[t.schema] for t in tenants]


async def _read_chunk(conn: asyncpg.Connection, chunk: list[TenantRef]) -> list[TenantVersion]:
    query = " UNION ALL ".join(
        f"SELECT {index}, version_num FROM {quote_schema(tenant.schema)}.alembic_version"
        for index, tenant in enumerate(chunk)
    )
    try:
        rows = await conn.fetch(query)
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return [await _read_one(conn, tenant) for tenant in chunk]  # dropped since the layout
    found: dict[int, list[str]] = {}
    for index, revision in rows:
        found.setdefault(index, []).append(revision)
    return [_version(tenant, found.get(index, [])) for index, tenant in enumerate(chunk)]


async def _read_one(conn: asyncpg.Connection, tenant: TenantRef) -> TenantVersion:
    try:
        rows = await conn.fetch(
            f"SELECT version_num FROM {quote_schema(tenant.schema)}.alembic_version"
        )
    except asyncpg.InvalidSchemaNameError:
        return missing_schema(tenant)
    except asyncpg.UndefinedTableError:
        return TenantVersion(tenant, None)
    return _version(tenant, [row[0] for row in rows])


def _version(tenant: TenantRef, revisions: list[str]) -> TenantVersion:
    if len(revisions) > 1:
        return TenantVersion(tenant, None, f"several version rows: {', '.join(sorted(revisions))}")
    return TenantVersion(tenant, revisions[0] if revisions else None)

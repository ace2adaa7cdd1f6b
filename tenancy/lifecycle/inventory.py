"""Every tenant with what an operator asks first: status, revision, age and size on disk."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.naming import checked_data_schema, quote_data_schema
from tenancy.registry import tenants

_BATCH = 500

_SCHEMA_SIZES = text(
    """
    SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
    FROM pg_namespace n LEFT JOIN pg_class c
      ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'S')
    WHERE n.nspname = ANY(CAST(:schemas AS text[])) GROUP BY n.nspname"""
)
"""Tables with their indexes and TOAST (pg_total_relation_size), materialized views, sequences.

The schema list is bound as text[], never as the name[] that `nspname = ANY(:schemas)` would make
of it: asyncpg has no built-in codec for name[] and would look the type up on every new
connection, a catalog query that takes seconds on a Citus coordinator (pg_class scans there
carry Citus's shard-visibility filter). `name = text` still uses pg_namespace's index."""

_VERSIONED = text(
    """
    SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relname = 'alembic_version' AND c.relkind = 'r'
      AND n.nspname = ANY(CAST(:schemas AS text[]))"""
)


@dataclass(frozen=True, slots=True)
class TenantSummary:
    slug: str
    display_name: str
    status: str
    schema: str
    """Where its tables are now: its tenant schema, or its archive while archived."""
    revision: str | None
    created_at: datetime
    size_bytes: int


async def tenant_inventory(conn: AsyncConnection, slug: str | None = None) -> list[TenantSummary]:
    """All tenants (or one), by slug: three queries, plus one per 500 tenants for revisions."""
    stmt = select(
        tenants.c.slug,
        tenants.c.display_name,
        tenants.c.status,
        func.coalesce(tenants.c.archived_schema, tenants.c.schema_name).label("location"),
        tenants.c.created_at,
    ).order_by(tenants.c.slug)
    if slug is not None:
        stmt = stmt.where(tenants.c.slug == slug)
    rows = (await conn.execute(stmt)).all()
    locations = [checked_data_schema(row.location) for row in rows]
    sizes = dict((await conn.execute(_SCHEMA_SIZES, {"schemas": locations})).all())
    revisions = await schema_revisions(conn, locations)
    return [
        TenantSummary(
            slug=row.slug,
            display_name=row.display_name,
            status=row.status,
            schema=location,
            revision=revisions.get(location),
            created_at=row.created_at,
            size_bytes=sizes.get(location, 0),
        )
        for row, location in zip(rows, locations, strict=True)
    ]


async def schema_revisions(conn: AsyncConnection, schemas: list[str]) -> dict[str, str]:
    """Each schema's Alembic revision, read in batches of UNION ALL (one round trip each)."""
    versioned = list(await conn.scalars(_VERSIONED, {"schemas": schemas}))
    revisions: dict[str, str] = {}
    for start in range(0, len(versioned), _BATCH):
        batch = versioned[start : start + _BATCH]
        union = " UNION ALL ".join(
            f"SELECT {n} AS n, version_num FROM {quote_data_schema(schema)}.alembic_version"
            for n, schema in enumerate(batch)
        )
        for n, version in await conn.execute(text(union)):
            schema = batch[n]
            revisions[schema] = ",".join(sorted(filter(None, [revisions.get(schema), version])))
    return revisions

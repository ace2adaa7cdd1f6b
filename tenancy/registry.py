"""The tenant registry: shared-schema tables and the lookups the request path needs."""

import asyncio
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.live_tenants import live_tenants_query
from tenancy.naming import NOTIFY_CHANNEL, REGISTRY_SCHEMA, checked_schema

registry_metadata = MetaData(schema=REGISTRY_SCHEMA)

ACTIVE, SUSPENDED, ARCHIVED = "active", "suspended", "archived"
TENANT_STATUSES = (ACTIVE, SUSPENDED)
"""What suspend/resume may set; ARCHIVED is only ever set (and undone) by archive/restore."""

ARCHIVE_COLUMNS_SET_TOGETHER = (
    "(status = 'archived') = (archived_at IS NOT NULL)"
    " AND (status = 'archived') = (archived_schema IS NOT NULL)"
    " AND (status = 'archived') = (status_before_archive IS NOT NULL)"
)
"""An archived row says when, where its schema went and what to restore it to; no other row does."""

tenants = Table(
    "tenants",
    registry_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("slug", Text, nullable=False, unique=True),
    Column("schema_name", Text, nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("archived_at", DateTime(timezone=True)),
    Column("archived_schema", Text, unique=True),
    Column("status_before_archive", Text),
    Column("rate_limit_per_second", Float),
    Column("rate_limit_burst", Integer),
    CheckConstraint("status IN ('active', 'suspended', 'archived')", name="tenants_status_check"),
    CheckConstraint(ARCHIVE_COLUMNS_SET_TOGETHER, name="tenants_archive_check"),
    CheckConstraint(
        "status_before_archive IN ('active', 'suspended')",
        name="tenants_status_before_archive_check",
    ),
    CheckConstraint("rate_limit_per_second > 0", name="tenants_rate_limit_per_second_check"),
    CheckConstraint("rate_limit_burst >= 1", name="tenants_rate_limit_burst_check"),
)
"""rate_limit_*: NULL means the default of the settings (see tenancy.middleware.rate_limit)."""

api_keys = Table(
    "api_keys",
    registry_metadata,
    Column("key_id", Text, primary_key=True),
    Column("tenant_id", BigInteger, ForeignKey(tenants.c.id, ondelete="CASCADE"), nullable=False),
    Column("key_hash", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("revoked_at", DateTime(timezone=True)),
    Index("api_keys_tenant_id_idx", "tenant_id"),
)

migrate_runs = Table(
    "migrate_runs",
    registry_metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("finished_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("duration_seconds", Float, nullable=False),
    Column("failed", Boolean, nullable=False),
    Column("tenants_failed", Integer),
)
"""One row per `tenantry migrate` run, for /metrics (see tenancy.observability.migrate_runs)."""

IS_LIVE = tenants.c.status != ARCHIVED
"""Tenants whose schema is in the tenant namespace: what requests and migrations may touch."""

LOAD_BATCH = 2000
"""Rows of the whole-registry load built into the map between two yields to the event loop."""


@dataclass(frozen=True, slots=True)
class ResolvedTenant:
    """What the request path needs to know about a tenant, cached per process."""

    id: int
    slug: str
    schema: str
    status: str
    key_hashes: dict[str, bytes] = field(repr=False)
    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None

    @property
    def is_active(self) -> bool:
        return self.status == "active"


def _tenants_with_active_keys():
    """tenants LEFT JOIN their active keys, live tenants only: one row per (tenant, key)."""
    return (
        select(
            tenants.c.id,
            tenants.c.slug,
            tenants.c.schema_name,
            tenants.c.status,
            tenants.c.rate_limit_per_second,
            tenants.c.rate_limit_burst,
            api_keys.c.key_id,
            api_keys.c.key_hash,
        )
        .select_from(
            tenants.outerjoin(
                api_keys,
                (api_keys.c.tenant_id == tenants.c.id) & api_keys.c.revoked_at.is_(None),
            )
        )
        .where(IS_LIVE)
    )


def _assemble(
    rows: Iterable[Any], tenants_by_slug: dict[str, ResolvedTenant] | None = None
) -> dict[str, ResolvedTenant]:
    """Group (tenant, key) rows by slug into ResolvedTenants, added to `tenants_by_slug` (rows of
    one tenant need not be adjacent). Schema names are checked against the naming rule."""
    if tenants_by_slug is None:
        tenants_by_slug = {}
    for r in rows:
        tenant = tenants_by_slug.get(r.slug)
        if tenant is None:
            tenant = tenants_by_slug[r.slug] = ResolvedTenant(
                id=r.id,
                slug=r.slug,
                schema=checked_schema(r.schema_name),
                status=r.status,
                key_hashes={},
                rate_limit_per_second=r.rate_limit_per_second,
                rate_limit_burst=r.rate_limit_burst,
            )
        if r.key_id is not None:
            tenant.key_hashes[r.key_id] = bytes(r.key_hash)
    return tenants_by_slug


async def resolve_tenant(conn: AsyncConnection, slug: str) -> ResolvedTenant | None:
    """One round trip: the tenant and its active key hashes (an archived tenant is unknown)."""
    rows = await conn.execute(_tenants_with_active_keys().where(tenants.c.slug == slug))
    return _assemble(rows).get(slug)


async def resolve_tenants(
    conn: AsyncConnection, slugs: Collection[str] | None = None
) -> dict[str, ResolvedTenant]:
    """One query: every live tenant (slugs=None) or those of `slugs` that are live, by slug,
    with their active key hashes. Slugs that are unknown or archived are simply absent.

    The whole registry is streamed in batches of LOAD_BATCH rows, yielding to the event loop
    between them, so a reload never stalls requests for long. At 100,000 tenants with one key
    each: 61 MiB of Python objects, about 3.5 s on a busy 2-core machine (bench/registry_memory.py).
    Needs a connection that may begin a transaction (a server-side cursor)."""
    stmt = _tenants_with_active_keys()
    if slugs is not None:
        return _assemble(await conn.execute(stmt.where(tenants.c.slug.in_(list(slugs)))))
    tenants_by_slug: dict[str, ResolvedTenant] = {}
    result = await conn.stream(stmt.execution_options(yield_per=LOAD_BATCH))
    async for batch in result.partitions():
        _assemble(batch, tenants_by_slug)
        await asyncio.sleep(0)  # let requests in between batches
    return tenants_by_slug


async def tenant_counts_by_status(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(tenants.c.status, func.count()).group_by(tenants.c.status))
    return {status: count for status, count in rows}


async def tenant_schemas(conn: AsyncConnection, slugs: list[str] | None = None) -> list[str]:
    """Schema names of all live tenants (or of the given slugs), each checked against the naming
    rule; archived tenants have no schema in the tenant namespace, so they are left out."""
    rows = await conn.exec_driver_sql(*live_tenants_query(slugs or ()))
    return [checked_schema(row.schema_name) for row in rows]


async def announce_change(conn: AsyncConnection, slug: str) -> None:
    """Tell every process to forget its cached copy once this transaction commits."""
    await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, slug)))

"""One live-tenants query (tenancy.live_tenants) behind all three callers: the migrate census
(asyncpg), Alembic's env.py (a sync SQLAlchemy Connection) and `tenantry roles` (an async one).
They see the same tenants, in the same order, never an archived one (a suspended one is live),
and filter named slugs the same way."""

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.database import asyncpg_dsn
from tenancy.lifecycle.archive import archive_tenant
from tenancy.lifecycle.errors import UnknownTenant
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.lifecycle.status import suspend_tenant
from tenancy.migrate.alembic_env import tenant_schemas_of
from tenancy.migrate.census import registered_tenants
from tenancy.registry import tenant_schemas


async def test_the_three_callers_see_the_same_live_tenants(
    database: str, engine: AsyncEngine, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    await archive_tenant(engine, other_tenant.slug)
    await suspend_tenant(engine, tenant.slug)  # suspended is still live
    raw = await asyncpg.connect(asyncpg_dsn(database))
    try:
        census = [t.schema for t in await registered_tenants(raw)]
        named = [t.schema for t in await registered_tenants(raw, [tenant.slug])]
        with pytest.raises(UnknownTenant, match="unknown or archived"):
            await registered_tenants(raw, [tenant.slug, other_tenant.slug])
        live_in_sql = [
            row["schema_name"]
            for row in await raw.fetch(
                "SELECT schema_name FROM tenantry.tenants WHERE archived_at IS NULL ORDER BY id"
            )
        ]
    finally:
        await raw.close()
    async with engine.connect() as conn:
        grants = await tenant_schemas(conn)
        grants_named = await tenant_schemas(conn, [tenant.slug, other_tenant.slug])
        alembic = [schema for _, schema in await conn.run_sync(tenant_schemas_of, [])]
        alembic_named = await conn.run_sync(tenant_schemas_of, [tenant.slug])
        with pytest.raises(UnknownTenant):
            await conn.run_sync(tenant_schemas_of, [other_tenant.slug])

    assert census == grants == alembic == live_in_sql
    assert tenant.schema in census and other_tenant.schema not in census
    assert named == grants_named == [tenant.schema]
    assert alembic_named == [(tenant.slug, tenant.schema)]

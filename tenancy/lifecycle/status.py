"""Suspend and resume: a suspended tenant's requests get 403 on every API process at once."""

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.lifecycle.records import locked_tenant
from tenancy.registry import ACTIVE, SUSPENDED, TENANT_STATUSES, announce_change, tenants


async def set_status(engine: AsyncEngine, slug: str, status: str) -> None:
    """Suspend or resume a tenant; every API process sees it as soon as this commits."""
    if status not in TENANT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(TENANT_STATUSES)}")
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        tenant.refuse_if_archived()
        await conn.execute(update(tenants).where(tenants.c.id == tenant.id).values(status=status))
        await announce_change(conn, slug)


async def suspend_tenant(engine: AsyncEngine, slug: str) -> None:
    await set_status(engine, slug, SUSPENDED)


async def resume_tenant(engine: AsyncEngine, slug: str) -> None:
    await set_status(engine, slug, ACTIVE)

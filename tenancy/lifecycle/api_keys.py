"""API keys after onboarding: more keys for rotation, listing, revocation; stored hashed."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.keys import NewKey, new_api_key
from tenancy.lifecycle.driver import driver_connection
from tenancy.lifecycle.errors import UnknownKey, UnknownTenant
from tenancy.lifecycle.onboarding import add_key
from tenancy.lifecycle.records import locked_tenant
from tenancy.registry import announce_change, api_keys, tenants


@dataclass(frozen=True, slots=True)
class KeyRow:
    key_id: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


async def create_key(engine: AsyncEngine, slug: str) -> NewKey:
    """Another active key for an existing tenant (clients rotate by holding two at once)."""
    key = new_api_key()
    async with engine.begin() as conn:
        tenant = await locked_tenant(conn, slug)
        tenant.refuse_if_archived()
        await add_key(await driver_connection(conn), tenant.id, key)
        await announce_change(conn, slug)
    return key


async def list_keys(conn: AsyncConnection, slug: str) -> list[KeyRow]:
    """Every key the tenant ever had, oldest first; hashes never leave the registry."""
    tenant_id = await conn.scalar(select(tenants.c.id).where(tenants.c.slug == slug))
    if tenant_id is None:
        raise UnknownTenant(f"unknown tenant {slug!r}")
    rows = await conn.execute(
        select(api_keys.c.key_id, api_keys.c.created_at, api_keys.c.revoked_at)
        .where(api_keys.c.tenant_id == tenant_id)
        .order_by(api_keys.c.created_at, api_keys.c.key_id)
    )
    return [KeyRow(*row) for row in rows]


async def revoke_key(engine: AsyncEngine, key_id: str, slug: str | None = None) -> str:
    """Revoke one key at once in every process; returns the slug of its tenant.

    With `slug`, only a key of that tenant is revoked (what a per-tenant admin route wants).
    """
    owner = select(tenants.c.slug).where(tenants.c.id == api_keys.c.tenant_id).scalar_subquery()
    stmt = (
        update(api_keys)
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(owner)
    )
    if slug is not None:
        stmt = stmt.where(owner == slug)
    async with engine.begin() as conn:
        revoked_from = await conn.scalar(stmt)
        if revoked_from is None:
            raise UnknownKey(f"no active key {key_id!r}")
        await announce_change(conn, revoked_from)
    return revoked_from

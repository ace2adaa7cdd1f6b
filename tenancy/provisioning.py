"""Creating a tenant: registry row, schema, every table at head and a first key, all or nothing."""

from dataclasses import dataclass

import asyncpg
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tenancy.keys import NewKey, new_api_key
from tenancy.migrate.render import cached_sql
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_schema, tenant_schema, validate_slug
from tenancy.registry import TENANT_STATUSES, announce_change, api_keys, tenants
from tenancy.roles import grant_runtime
from tenancy.session import SET_TENANT_SEARCH_PATH


class TenantExists(Exception):
    """The slug (or its schema) is taken."""


class UnknownTenant(LookupError):
    """No tenant has this slug."""


class UnknownKey(LookupError):
    """No active key has this id."""


@dataclass(frozen=True, slots=True)
class CreatedTenant:
    slug: str
    schema: str
    display_name: str
    key_id: str
    api_key: str


async def create_tenant(
    engine: AsyncEngine, tracks: Tracks, slug: str, display_name: str | None = None
) -> CreatedTenant:
    """One transaction: a failure at any step leaves no row, no schema and no key behind."""
    slug = validate_slug(slug)
    schema = tenant_schema(slug)
    head_sql = cached_sql(tracks.tenant, None, tracks.tenant_head)
    key = new_api_key()
    async with engine.begin() as conn:
        try:
            tenant_id = await conn.scalar(
                insert(tenants)
                .values(slug=slug, schema_name=schema, display_name=display_name or slug)
                .returning(tenants.c.id)
            )
            await conn.exec_driver_sql(f"CREATE SCHEMA {quote_schema(schema)}")
        except (IntegrityError, DBAPIError) as exc:
            if _is_duplicate(exc):
                raise TenantExists(f"tenant {slug!r} already exists") from None
            raise
        await conn.execute(SET_TENANT_SEARCH_PATH, {"schema": schema})
        await _run_script(conn, head_sql)
        await grant_runtime(conn, schema)
        await add_key(conn, tenant_id, key)
        await announce_change(conn, slug)
    return CreatedTenant(slug, schema, display_name or slug, key.key_id, key.token)


async def add_key(conn: AsyncConnection, tenant_id: int, key: NewKey) -> None:
    await conn.execute(
        insert(api_keys).values(key_id=key.key_id, tenant_id=tenant_id, key_hash=key.key_hash)
    )


async def _run_script(conn: AsyncConnection, sql: str) -> None:
    """Several statements in one round trip (simple query protocol), inside conn's transaction."""
    raw = await conn.get_raw_connection()
    await raw.driver_connection.execute(sql)


def _is_duplicate(exc: DBAPIError) -> bool:
    cause = getattr(exc.orig, "__cause__", None)
    return isinstance(cause, asyncpg.UniqueViolationError | asyncpg.DuplicateSchemaError)


async def create_key(engine: AsyncEngine, slug: str) -> NewKey:
    """Another active key for an existing tenant (clients rotate by holding two at once)."""
    key = new_api_key()
    async with engine.begin() as conn:
        tenant_id = await conn.scalar(select(tenants.c.id).where(tenants.c.slug == slug))
        if tenant_id is None:
            raise UnknownTenant(f"unknown tenant {slug!r}")
        await add_key(conn, tenant_id, key)
        await announce_change(conn, slug)
    return key


async def revoke_key(engine: AsyncEngine, key_id: str) -> str:
    """Revoke one key at once in every process; returns the slug of its tenant."""
    async with engine.begin() as conn:
        slug = await conn.scalar(
            update(api_keys)
            .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(
                select(tenants.c.slug).where(tenants.c.id == api_keys.c.tenant_id).scalar_subquery()
            )
        )
        if slug is None:
            raise UnknownKey(f"no active key {key_id!r}")
        await announce_change(conn, slug)
    return slug


async def set_status(engine: AsyncEngine, slug: str, status: str) -> None:
    """Suspend or resume a tenant; every API process sees it as soon as this commits."""
    if status not in TENANT_STATUSES:
        raise ValueError(f"status must be one of {', '.join(TENANT_STATUSES)}")
    async with engine.begin() as conn:
        result = await conn.execute(
            update(tenants).where(tenants.c.slug == slug).values(status=status)
        )
        if result.rowcount == 0:
            raise UnknownTenant(f"unknown tenant {slug!r}")
        await announce_change(conn, slug)

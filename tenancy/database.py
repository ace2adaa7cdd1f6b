"""Where the database is, and the engine that talks to it."""

import re
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from tenancy.connection import StatementCache, TenantConnection
from tenancy.dsn import plain_dsn
from tenancy.pool import limit_connection_schemas, limit_connection_uses
from tenancy.settings import TenancySettings

EMBEDDED_RUNTIME_ROLE = "tenantry_api"
"""The embedded server's login role for the API (trust over its private Unix socket)."""
EMBEDDED_OWNER_ROLE = "tenantry_owner"
"""The embedded server's owner role: migrations, onboarding, import, the CLI. Not a superuser:
the server's superuser only creates it and the runtime roles (`tenancy.roles.setup_owner`)."""

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@lru_cache
def _embedded_server_url(data_dir: Path, database: str) -> str:
    from tenancy.embedded import embedded_url, start_embedded_server

    return embedded_url(start_embedded_server(data_dir), database)


async def database_url(settings: TenancySettings) -> str:
    """The owner's URL (migrations, onboarding, import, the CLI): TENANTRY_OWNER_DATABASE_URL,
    else TENANTRY_DATABASE_URL, else the embedded server's `tenantry_owner` (not a superuser),
    which the server's superuser sets up on first use in each process."""
    configured = settings.owner_database_url or settings.database_url
    if configured:
        return configured
    superuser = await bootstrap_url(settings)
    await _setup_embedded_owner(superuser)
    return make_url(superuser).set(username=EMBEDDED_OWNER_ROLE).render_as_string(False)


def is_embedded(settings: TenancySettings) -> bool:
    return not (settings.owner_database_url or settings.database_url)


async def bootstrap_url(settings: TenancySettings) -> str:
    """A URL that may create databases and roles: TENANTRY_BOOTSTRAP_DATABASE_URL, else the
    embedded server's superuser (the server started and its database created on first use),
    else the owner's. For `roles setup`, and for tests and benchmarks that make databases."""
    if settings.bootstrap_database_url:
        return settings.bootstrap_database_url
    if not is_embedded(settings):
        return settings.owner_database_url or settings.database_url or ""
    url = _embedded_server_url(settings.data_dir.resolve(), settings.embedded_database)
    await ensure_database(url)
    return url


def superuser_engine(url: str) -> AsyncEngine:
    """An engine for a superuser's session in a database the owner role owns (`tenantry roles
    setup`, the embedded set-up below): no pool, and the search_path pinned to the catalog from
    the startup packet on (`tenancy.search_path.CATALOG_ONLY_STARTUP`), before SQLAlchemy's own
    first statements, so that nothing the owner planted (a function in `public`, a database-level
    search_path) runs with the superuser's rights."""
    from tenancy.search_path import CATALOG_ONLY_STARTUP

    return create_async_engine(
        url,
        poolclass=NullPool,
        hide_parameters=True,  # a role's password is a bound parameter of roles setup's format()
        connect_args={"server_settings": dict(CATALOG_ONLY_STARTUP)},
    )


_owners_set_up: set[str] = set()


async def _setup_embedded_owner(superuser_url: str) -> None:
    """Once per process and server: the owner role, owning the database and its schemas."""
    if superuser_url in _owners_set_up:
        return
    from tenancy.roles import setup_owner

    engine = superuser_engine(superuser_url)
    try:
        async with engine.begin() as conn:
            await setup_owner(conn, EMBEDDED_OWNER_ROLE)
    finally:
        await engine.dispose()
    _owners_set_up.add(superuser_url)


def runtime_login(settings: TenancySettings) -> tuple[str, str | None]:
    """The runtime role's name and password, as the API will log in."""
    if not settings.database_url:
        return EMBEDDED_RUNTIME_ROLE, None
    url = make_url(settings.database_url)
    return url.username or "", url.password


async def api_database_url(settings: TenancySettings) -> str:
    """The URL the API's request path uses: TENANTRY_DATABASE_URL, else the embedded server's
    runtime role, set up (idempotently) by the owner first."""
    if settings.database_url:
        return settings.database_url
    owner = await database_url(settings)
    await _setup_embedded_runtime_role(await bootstrap_url(settings))
    return make_url(owner).set(username=EMBEDDED_RUNTIME_ROLE).render_as_string(hide_password=False)


async def _setup_embedded_runtime_role(superuser_url: str) -> None:
    """Roles created by the superuser, grants made as the owner (see setup_roles)."""
    from tenancy.roles import setup_roles

    engine = superuser_engine(superuser_url)
    try:
        async with engine.begin() as conn:
            await setup_roles(
                conn, EMBEDDED_RUNTIME_ROLE, require_registry=False, owner=EMBEDDED_OWNER_ROLE
            )
    finally:
        await engine.dispose()


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain libpq-style DSN, for raw asyncpg connections."""
    return plain_dsn(url)


def quote_database(name: str) -> str:
    """Database names come from settings or tests, never from requests; still, only [a-z0-9_]."""
    if _DATABASE_NAME.fullmatch(name) is None:
        raise ValueError(f"unsupported database name: {name!r}")
    return f'"{name}"'


async def ensure_database(url: str) -> bool:
    """Create the URL's database if it does not exist yet; True when it was created."""
    target = make_url(url)
    name = target.database or "postgres"
    admin = asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f"CREATE DATABASE {quote_database(name)}")
        return True
    finally:
        await conn.close()


def create_engine(url: str, settings: TenancySettings) -> AsyncEngine:
    """The pool of the request path: BEGIN carries the tenant's search_path (TenantConnection),
    prepared statements are cached per table shape and, for tenants that come back to a
    connection, per schema (StatementCache, never behind PgBouncer), and connections are
    replaced once they have entered pool_max_schemas tenant schemas, after pool_max_uses
    checkouts (off by default) or pool_recycle seconds. hide_parameters: bound values (request
    bodies) never reach logs or errors."""
    # behind PgBouncer a client connection's transactions run on PgBouncer's backends, whose
    # caches its own server_lifetime bounds: counting schemas here would bound nothing
    max_schemas = 0 if settings.pgbouncer else settings.pool_max_schemas
    connection_class = TenantConnection.for_engine(
        shapes=not settings.pgbouncer, max_schemas=max_schemas
    )
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        hide_parameters=True,
        connect_args={
            "connection_class": connection_class,
            "server_settings": {"application_name": settings.application_name},
            **pgbouncer_connect_args(settings),
        },
    )
    if not settings.pgbouncer:
        cache_statements_per_shape(engine, settings.statement_cache_size)
    limit_connection_schemas(engine, max_schemas)
    limit_connection_uses(engine, settings.pool_max_uses)
    return engine


def cache_statements_per_shape(engine: AsyncEngine, capacity: int) -> None:
    """Replace the dialect's per-connection statement cache (keyed by SQL) with
    tenancy.connection.StatementCache (keyed by the tenant's table shape or schema, and SQL), as
    each connection opens; `capacity` statements per tier."""

    interned: dict[Any, Any] = {}  # result descriptions shared by the engine's connections

    @event.listens_for(engine.sync_engine, "connect")
    def shape_keyed(dbapi_connection: Any, _record: Any) -> None:
        driver = dbapi_connection.driver_connection
        if isinstance(driver, TenantConnection):
            cache = StatementCache(driver, capacity, interned)
            dbapi_connection._prepared_statement_cache = cache


def pgbouncer_connect_args(settings: TenancySettings) -> dict[str, object]:
    """Behind PgBouncer's transaction pooling, consecutive transactions of one client connection
    may run on different server connections, so a prepared statement must never outlive its
    transaction nor clash by name with another client's (PgBouncer < 1.21 does not track them)."""
    if not settings.pgbouncer:
        return {}
    return {
        "prepared_statement_cache_size": 0,  # SQLAlchemy's cache of the statements it runs
        "prepared_statement_name_func": _unique_name,
        "statement_cache_size": 0,  # asyncpg's own, which serves its type introspection
    }


def _unique_name() -> str:
    return f"__tenantry_{uuid.uuid4().hex}__"

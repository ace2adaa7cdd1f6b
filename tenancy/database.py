"""Where the database is, and the engine that talks to it."""

import re
from functools import lru_cache
from pathlib import Path

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tenancy.connection import TenantConnection
from tenancy.pool import limit_connection_uses
from tenancy.settings import TenancySettings

_DATABASE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@lru_cache
def _embedded_server_url(data_dir: Path, database: str) -> str:
    from tenancy.embedded import embedded_url, start_embedded_server

    return embedded_url(start_embedded_server(data_dir), database)


async def database_url(settings: TenancySettings) -> str:
    """The configured URL, or the embedded server's (started on first use, stopped at exit)."""
    if settings.database_url:
        return settings.database_url
    url = _embedded_server_url(settings.data_dir.resolve(), settings.embedded_database)
    await ensure_database(url)
    return url


def asyncpg_dsn(url: str) -> str:
    """The same database as a plain libpq-style DSN, for raw asyncpg connections."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


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


async def drop_database(url: str) -> None:
    target = make_url(url)
    admin = asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(
            f"DROP DATABASE IF EXISTS {quote_database(target.database or '')} WITH (FORCE)"
        )
    finally:
        await conn.close()


def create_engine(url: str, settings: TenancySettings) -> AsyncEngine:
    """The pool of the request path: BEGIN carries the tenant's search_path (TenantConnection)
    and connections are replaced after pool_max_uses checkouts or pool_recycle seconds.
    hide_parameters: bound values (request bodies) never reach logs or error messages."""
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        hide_parameters=True,
        connect_args={
            "connection_class": TenantConnection,
            "server_settings": {"application_name": settings.application_name},
        },
    )
    limit_connection_uses(engine, settings.pool_max_uses)
    return engine

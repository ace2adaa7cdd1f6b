"""Dropping a throwaway database: tests and benchmarks only (the service never drops one)."""

import contextlib

import asyncpg
from sqlalchemy import make_url

from tenancy.database import asyncpg_dsn, quote_database
from tenancy.roles import runtime_group


async def drop_database(url: str) -> None:
    """Drop url's database, if it exists, through the server's `postgres` database; sessions
    still connected to it are ended (`WITH (FORCE)`). Then its runtime group role
    (`tenancy.roles.runtime_group`), which roles being cluster-wide would otherwise outlive it:
    one leaked role per test run on the developer's server."""
    target = make_url(url)
    admin = asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(
            f"DROP DATABASE IF EXISTS {quote_database(target.database or '')} WITH (FORCE)"
        )
        drop_group = await conn.fetchval(
            "SELECT format('DROP ROLE IF EXISTS %I', $1::text)",
            runtime_group(target.database or ""),
        )
        # still granted something elsewhere (another node's copy): left, as before
        with contextlib.suppress(asyncpg.DependentObjectsStillExistError):
            await conn.execute(drop_group)
    finally:
        await conn.close()

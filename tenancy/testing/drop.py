"""Dropping a throwaway database: tests and benchmarks only (the service never drops one)."""

import asyncpg
from sqlalchemy import make_url

from tenancy.database import asyncpg_dsn, quote_database


async def drop_database(url: str) -> None:
    """Drop url's database, if it exists, through the server's `postgres` database; sessions
    still connected to it are ended (`WITH (FORCE)`)."""
    target = make_url(url)
    admin = asyncpg_dsn(target.set(database="postgres").render_as_string(hide_password=False))
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(
            f"DROP DATABASE IF EXISTS {quote_database(target.database or '')} WITH (FORCE)"
        )
    finally:
        await conn.close()

"""The plain asyncpg connection under a SQLAlchemy one, its transaction begun: what a step that
runs over asyncpg (onboarding's, the runtime grants) is given when the work runs on an engine."""

from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


async def driver_connection(conn: "AsyncConnection") -> asyncpg.Connection:
    """conn's asyncpg connection, inside conn's transaction.

    SQLAlchemy's asyncpg dialect sends BEGIN lazily, with the first statement it runs itself:
    when it has run none yet, one trivial statement opens the transaction, so what runs on the
    driver connection commits or rolls back with conn's transaction."""
    if not conn.in_transaction():
        raise RuntimeError("driver_connection needs a connection inside engine.begin()")
    raw = (await conn.get_raw_connection()).driver_connection
    if not raw.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")
    return raw

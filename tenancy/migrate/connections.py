"""The connections a run works on: a few raw asyncpg ones, and one SQLAlchemy one for Alembic.

SQLAlchemy is imported only for that one (a run with nothing to do never opens it)."""

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection


@asynccontextmanager
async def open_connections(dsn: str, count: int) -> AsyncIterator[list[asyncpg.Connection]]:
    """`count` plain asyncpg connections (at least one), reused for every tenant of a run."""
    connections: list[asyncpg.Connection] = []
    try:
        for _ in range(max(1, count)):
            connections.append(await asyncpg.connect(dsn))
        yield connections
    finally:
        for conn in connections:
            await conn.close()


@asynccontextmanager
async def alembic_connection(url: str) -> AsyncIterator["AsyncConnection"]:
    """One unpooled SQLAlchemy connection, for the work that needs an Alembic context."""
    from sqlalchemy import pool
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


async def side_by_side(*work: Coroutine[Any, Any, None]) -> None:
    """Run coroutines concurrently; the first failure cancels the others, then is raised.

    (Plain `asyncio.gather` would leave the others running on connections about to close.)
    """
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

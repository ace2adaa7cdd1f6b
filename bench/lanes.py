"""Raw SQL over many tenant schemas on a few asyncpg connections: one transaction per schema.

What the benchmarks do by hand beside Tenantry (the floor of a migration, putting tenants back
between runs, seeding rows): no registry, no checks, only the database's own work.
"""

import asyncio
from collections.abc import Awaitable, Callable, Iterable

import asyncpg

from tenancy.citus import is_citus, statements_for
from tenancy.database import asyncpg_dsn
from tenancy.migrate.connections import open_connections
from tenancy.naming import quote_schema

Work = Callable[[asyncpg.Connection, str], Awaitable[object]]
"""What to do in one schema, inside its transaction: called with the connection and the schema."""


async def each_schema(url: str, schemas: Iterable[str], connections: int, work: Work) -> None:
    async with open_connections(asyncpg_dsn(url), connections) as lanes:
        queue = iter(schemas)

        async def lane(conn: asyncpg.Connection) -> None:
            for schema in queue:
                async with conn.transaction():
                    await work(conn, schema)

        await asyncio.gather(*(lane(conn) for conn in lanes))


def script(template: str) -> Work:
    """Work that runs `template` with `{s}` replaced by the quoted schema name: one round trip,
    or one statement at a time on a Citus coordinator (tenancy.citus.statements_for)."""
    citus: dict[asyncpg.Connection, bool] = {}

    async def run(conn: asyncpg.Connection, schema: str) -> None:
        if conn not in citus:
            citus[conn] = await is_citus(conn)
        for statement in statements_for(template.format(s=quote_schema(schema)), citus[conn]):
            await conn.execute(statement)

    return run

"""What a Citus coordinator asks differently of Tenantry, and how Tenantry knows it is on one.

Tenantry runs unchanged on one PostgreSQL server and on a Citus cluster with schema-based
sharding (docs/scale-out.md), except where Citus behaves differently:

- scripts of several statements go one statement at a time (`statements_for`): Citus forwards
  some DDL to the worker with the whole query string, which the worker refuses
  (citusdata/citus#6608). On one server a script stays one round trip.
"""

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from tenancy.sql_statements import split_statements

HAS_CITUS = "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')"
_INFO_KEY = "tenantry.citus"


async def is_citus(conn: asyncpg.Connection) -> bool:
    """True when the connection's database has the Citus extension (one catalog lookup)."""
    return bool(await conn.fetchval(HAS_CITUS))


async def is_citus_pooled(conn: AsyncConnection) -> bool:
    """`is_citus`, asked once per pooled connection (kept in the connection's `info`)."""
    info = conn.info
    if _INFO_KEY not in info:
        raw = (await conn.get_raw_connection()).driver_connection
        info[_INFO_KEY] = await is_citus(raw)
    return bool(info[_INFO_KEY])


def statements_for(script: str, citus: bool) -> tuple[str, ...]:
    """What to send for `script`: itself in one round trip, or its statements on Citus."""
    if not citus:
        return (script,)
    return split_statements(script)

"""Replace a pooled connection once it has entered too many tenant schemas (or, if asked, after
a number of uses), to bound its backend's catalog caches.

A PostgreSQL backend caches catalog entries for every relation it touches and never evicts
them, so a connection that visits thousands of tenant schemas grows by about 10 KiB per schema
(measured in bench/README.md). Growth follows the number of distinct schemas a connection has
entered, not time (`pool_recycle` alone cannot bound it) nor its uses: a connection that serves
the same hundred tenants a million times stays the size it was after its first visit to each.
TenantConnection counts the schemas its request transactions entered (the search_path armed on
BEGIN; other ways into a schema on the same engine, such as onboarding or catch-up, and
schema-qualified reads are rare and not counted); at the limit a checkout listener
refuses it, so the pool closes it and hands out a fresh one in its place. (pool_max_uses, a plain
use count, soft-invalidates instead: the current user keeps the connection to the end.)
SQLAlchemy has neither setting.
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

from tenancy.connection import TenantConnection

_USES = "tenantry_uses"


def limit_connection_uses(engine: AsyncEngine, max_uses: int) -> None:
    """Every pooled connection of engine serves at most max_uses checkouts (0: no limit)."""
    if max_uses <= 0:
        return

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def count_use(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        uses = record.info.get(_USES, 0) + 1
        record.info[_USES] = uses
        if uses >= max_uses:
            record.invalidate(soft=True)


def limit_connection_schemas(engine: AsyncEngine, max_schemas: int) -> None:
    """Every pooled TenantConnection of engine is replaced at the first checkout after it has
    entered max_schemas distinct tenant schemas (0: no limit)."""
    if max_schemas <= 0:
        return

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def count_schemas(dbapi: Any, _record: ConnectionPoolEntry, _proxy: Any) -> None:
        driver = dbapi.driver_connection
        if issubclass(type(driver), TenantConnection) and driver.schemas_entered >= max_schemas:
            # SQLAlchemy's documented way to refuse a connection at checkout: the pool discards
            # it and checks out a fresh one in its place, for this checkout already
            raise DisconnectionError(f"entered {max_schemas} tenant schemas: replaced")

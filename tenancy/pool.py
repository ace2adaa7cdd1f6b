"""Replace a pooled connection after a number of uses, to bound its backend's catalog caches.

A PostgreSQL backend caches catalog entries for every relation it touches and never evicts
them, so a connection that visits thousands of tenant schemas grows by about 10 KiB per schema
(measured in bench/README.md). Growth follows the number of checkouts, not time, so
`pool_recycle` alone cannot bound it; a use count can. SQLAlchemy has no such setting: a
checkout listener counts uses and soft-invalidates the connection at the limit, so the pool
closes it and opens a fresh one at its next checkout (the current user keeps it to the end).
"""

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import ConnectionPoolEntry

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

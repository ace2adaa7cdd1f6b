"""One migrate run at a time per database: a session-level advisory lock held for the run.

Session-level, not transaction-level: the run commits once per tenant, and the lock must
outlive every one of those transactions. When the process dies (even with `kill -9`) its
connection closes and PostgreSQL releases the lock, so a crashed run never blocks the next.
"""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:  # only plain Alembic's held_by() needs SQLAlchemy
    from sqlalchemy import Connection

MIGRATE_LOCK = (0x7E4A, 0x4D16)
"""(classid, objid) of the advisory lock; the same in `tenantry migrate` and plain Alembic."""

_TRY = "SELECT pg_try_advisory_lock($1, $2)"
_HOLDER = """
SELECT pid FROM pg_locks
WHERE locktype = 'advisory' AND granted AND database = (
    SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = $1 AND objid = $2 AND objsubid = 2
"""


class MigrationInProgress(RuntimeError):
    """Another run holds the lock; this one touched nothing."""

    def __init__(self, holder_pid: int | None) -> None:
        who = f" (PostgreSQL backend pid {holder_pid})" if holder_pid else ""
        super().__init__(
            f"another migrate run is in progress on this database{who}; "
            "nothing was changed, run again when it has finished"
        )


@asynccontextmanager
async def exclusive_run(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold the migrate lock on a connection of its own for the whole block, or refuse at once."""
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval(_TRY, *MIGRATE_LOCK):
            raise MigrationInProgress(await conn.fetchval(_HOLDER, *MIGRATE_LOCK))
        yield conn
    finally:
        await conn.close()


@contextmanager
def held_by(connection: "Connection") -> Iterator[None]:
    """The same lock for plain `alembic upgrade`, on its (synchronous) connection."""
    from sqlalchemy import text

    keys = dict(zip(("classid", "objid"), MIGRATE_LOCK, strict=True))
    with connection.begin():
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:classid, :objid)"), keys)
        if not taken.scalar():
            raise MigrationInProgress(None)
    try:
        yield
    finally:
        with connection.begin():
            connection.execute(text("SELECT pg_advisory_unlock(:classid, :objid)"), keys)

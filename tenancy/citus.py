"""What a Citus coordinator asks differently of Tenantry, and how Tenantry knows it is on one.

Tenantry runs unchanged on one PostgreSQL server and on a Citus cluster with schema-based
sharding (docs/scale-out.md), except where Citus behaves differently:

- scripts of several statements go one statement at a time (`statements_for`): Citus forwards
  some DDL to the worker with the whole query string, which the worker refuses
  (citusdata/citus#6608). On one server a script stays one round trip;
- lock waits show on the workers: `LOCK_WAITS` and `WHO_BLOCKS_WHOM` lead back to the request.
"""

from weakref import WeakKeyDictionary

import asyncpg

from tenancy.sql_statements import split_statements

HAS_CITUS = "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')"
_ASKED: "WeakKeyDictionary[asyncpg.Connection, bool]" = WeakKeyDictionary()


async def is_citus(conn: asyncpg.Connection) -> bool:
    """True when the connection's database has the Citus extension (one catalog lookup)."""
    return bool(await conn.fetchval(HAS_CITUS))


async def is_citus_pooled(conn: asyncpg.Connection) -> bool:
    """`is_citus`, asked once per connection (a pooled one's driver connection included): the
    answer is kept for as long as the connection lives."""
    known = _ASKED.get(conn)
    if known is None:
        known = _ASKED[conn] = await is_citus(conn)
    return known


def statements_for(script: str, citus: bool) -> tuple[str, ...]:
    """What to send for `script`: itself in one round trip, or its statements on Citus."""
    if not citus:
        return (script,)
    return split_statements(script)


LOCK_WAITS = """
SELECT DISTINCT ON (client.global_pid)
       client.pid, client.application_name, client.query,
       waiter.wait_event_type, waiter.wait_event, waiter.nodeid
FROM citus_stat_activity waiter
JOIN citus_stat_activity client
  ON client.global_pid = waiter.global_pid AND NOT client.is_worker_query
WHERE waiter.wait_event_type = 'Lock' AND waiter.datname = current_database()
  AND client.global_pid <> citus_backend_gpid()
ORDER BY client.global_pid
"""
"""On a Citus coordinator: the client backends (their coordinator pid, `application_name`, query)
with a backend waiting on a lock on any node. A request's lock wait is on the worker holding its
tenant, under a `citus_internal gpid=...` backend; the global pid leads back to the coordinator
backend, whose `application_name` is `tenantry:<slug>:<request id>`. (pg_stat_activity on the
coordinator shows that backend waiting on `Client/ClientRead`.)"""

WHO_BLOCKS_WHOM = """
SELECT waiting.application_name AS waiting, blocking.application_name AS blocking,
       w.blocked_statement, w.waiting_nodeid, w.blocking_nodeid
FROM citus_lock_waits w
JOIN citus_stat_activity waiting
  ON waiting.global_pid = w.waiting_gpid AND NOT waiting.is_worker_query
JOIN citus_stat_activity blocking
  ON blocking.global_pid = w.blocking_gpid AND NOT blocking.is_worker_query
"""
"""On a Citus coordinator: which request waits for which, cluster-wide (`citus_lock_waits`, the
distributed wait graph, mapped back to the coordinator backends' `application_name`)."""

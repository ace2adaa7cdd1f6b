"""The Citus mode of the tests and benchmarks: TENANTRY_DATABASE_URL names a Citus coordinator and
TENANTRY_CITUS_WORKERS its workers (`host:port,host:port`, as deploy/citus/cluster.sh prints).

Citus does not propagate `CREATE DATABASE`, and each database of a cluster needs the extension
and its own node registration: a throwaway database is created on every node, `citus` is created
in each, and the coordinator's copy registers itself and the workers, with schema-based sharding
on for every session. Without TENANTRY_CITUS_WORKERS every helper here is plain PostgreSQL.
"""

import os
from functools import cache

import asyncpg
from sqlalchemy import make_url

from tenancy.database import asyncpg_dsn, quote_database

CITUS_WORKERS_ENV = "TENANTRY_CITUS_WORKERS"


@cache
def citus_workers() -> tuple[tuple[str, int], ...]:
    """The workers named by TENANTRY_CITUS_WORKERS; empty when the suite runs on one server."""
    spec = os.environ.get(CITUS_WORKERS_ENV, "").strip()
    workers = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{CITUS_WORKERS_ENV}: expected host:port, got {item!r}")
        workers.append((host, int(port)))
    return tuple(workers)


def on_citus() -> bool:
    return bool(citus_workers())


def on_node(url: str, host: str, port: int) -> str:
    return make_url(url).set(host=host, port=port).render_as_string(hide_password=False)


def worker_urls(url: str) -> list[str]:
    """The same database on each worker (same user), for looking behind the coordinator's back."""
    return [on_node(url, host, port) for host, port in citus_workers()]


async def register_nodes(url: str) -> None:
    """In a new database at `url` (and its copies on the workers): the extension, and the
    coordinator and workers registered, so that every schema created there is distributed."""
    for worker in worker_urls(url):
        await run_statements(worker, "CREATE EXTENSION IF NOT EXISTS citus")
    coordinator = make_url(url)
    registration = [
        "CREATE EXTENSION IF NOT EXISTS citus",
        f"ALTER DATABASE {quote_database(coordinator.database or '')} "
        "SET citus.enable_schema_based_sharding = on",
        f"SELECT citus_set_coordinator_host('{coordinator.host}', {coordinator.port or 5432})",
        *(f"SELECT citus_add_node('{host}', {port})" for host, port in citus_workers()),
    ]
    await run_statements(url, *registration)


async def run_statements(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()

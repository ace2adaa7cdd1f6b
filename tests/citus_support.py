"""The suite's Citus mode: TENANTRY_DATABASE_URL names a Citus coordinator and
TENANTRY_CITUS_WORKERS its workers (`host:port,host:port`, as deploy/citus/cluster.sh prints).

Citus does not propagate `CREATE DATABASE`, and each database of a cluster needs the extension
and its own node registration: a throwaway database is created on every node, `citus` is created
in each, and the coordinator's copy registers itself and the workers, with schema-based sharding
on for every session. Without TENANTRY_CITUS_WORKERS every helper here is plain PostgreSQL.
"""

import os
from functools import cache

import asyncpg
import pytest
from sqlalchemy import make_url

from tenancy.database import asyncpg_dsn, ensure_database, quote_database
from tenancy.testing.drop import drop_database

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


async def create_test_database(url: str) -> None:
    """A new database at `url`; on Citus on every node, with the extension and the nodes
    registered, so that every schema created there is distributed."""
    await ensure_database(url)
    if not on_citus():
        return
    for worker in worker_urls(url):
        await ensure_database(worker)
        await _run(worker, "CREATE EXTENSION IF NOT EXISTS citus")
    coordinator = make_url(url)
    registration = [
        "CREATE EXTENSION IF NOT EXISTS citus",
        f"ALTER DATABASE {quote_database(coordinator.database or '')} "
        "SET citus.enable_schema_based_sharding = on",
        f"SELECT citus_set_coordinator_host('{coordinator.host}', {coordinator.port or 5432})",
        *(f"SELECT citus_add_node('{host}', {port})" for host, port in citus_workers()),
    ]
    await _run(url, *registration)


async def drop_test_database(url: str) -> None:
    """The coordinator's database first (it holds connections to the workers' copies)."""
    await drop_database(url)
    for worker in worker_urls(url):
        await drop_database(worker)


async def _run(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def skip_single_server_tests(items: list[pytest.Item]) -> None:
    """On Citus, tests marked `single_server(reason)` are skipped with their reason; the reason
    is required, so that every such test says why it holds on one server only."""
    for item in items:
        marker = item.get_closest_marker("single_server")
        if marker is None:
            continue
        if not marker.args or not str(marker.args[0]).strip():
            raise pytest.UsageError(f"{item.nodeid}: single_server needs a reason")
        if on_citus():
            item.add_marker(pytest.mark.skip(reason=f"one server only: {marker.args[0]}"))
    if not on_citus():
        skip = pytest.mark.skip(reason=f"Citus only: set {CITUS_WORKERS_ENV} (make test-citus)")
        for item in items:
            if item.get_closest_marker("citus") is not None:
                item.add_marker(skip)

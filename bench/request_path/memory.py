"""Benchmark 3: PostgreSQL backend memory after touching thousands of tenant schemas.

Growth: one pooled connection runs the request path's transaction (`tenant_transaction`, then
the GET /todos/{id} query) in every tenant schema in turn; at checkpoints we read the backend's
own `pg_backend_memory_contexts` and, when the server is local, its RSS from /proc.

Policy: a pool of `pool_size` connections runs `transactions` such transactions over uniformly
random tenants with each `pool_max_uses` setting, while a sampler reads the RSS of every backend
of the database; we report the peaks and the transactions per second (what reconnecting costs).
"""

import asyncio
import contextlib
import random
import time
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import TextClause, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from bench.request_path.databases import BenchDatabases
from service.todos import Todo
from tenancy.database import asyncpg_dsn, create_engine
from tenancy.naming import tenant_schema
from tenancy.session import tenant_transaction
from tenancy.settings import TenancySettings

MIB = 1024 * 1024

MEMORY_CONTEXTS = text(
    "SELECT sum(total_bytes)::float8,"
    " (sum(total_bytes) FILTER (WHERE 'CacheMemoryContext' IN (name, parent)))::float8"
    " FROM pg_backend_memory_contexts"
)
"""This backend's memory, and CacheMemoryContext with its children (PostgreSQL 14 to 17)."""
MEMORY_CONTEXTS_18 = text(
    "WITH cache AS (SELECT path[level] AS id, level FROM pg_backend_memory_contexts"
    "  WHERE name = 'CacheMemoryContext')"
    " SELECT sum(total_bytes)::float8,"
    " (sum(total_bytes) FILTER (WHERE path[cache.level] = cache.id))::float8"
    " FROM pg_backend_memory_contexts, cache"
)
"""The same from PostgreSQL 18 on, where contexts name their ancestors by id in `path`."""
OTHER_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def backend_rss(pid: int) -> dict[str, int] | None:
    """VmRSS and RssAnon (private memory: where catalog caches live) of a local backend, bytes."""
    status = Path(f"/proc/{pid}/status")
    try:
        if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
            return None
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
    except OSError:
        return None  # the server is not on this machine, or the backend has gone
    return {
        name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "RssAnon") if name in fields
    }


def _engine(url: str, pool_size: int, max_uses: int) -> AsyncEngine:
    """A pool replaced only after max_uses checkouts (the schema count off, so that one
    connection can grow across every schema and each policy is the use count alone)."""
    settings = TenancySettings(
        database_url=url,
        pool_size=pool_size,
        max_overflow=0,
        pool_max_uses=max_uses,
        pool_max_schemas=0,
    )
    return create_engine(url, settings)


async def _touch(sessions: async_sessionmaker, schema: str) -> None:
    """What GET /todos/{id} does in the database."""
    async with tenant_transaction(sessions, schema) as session:
        await session.scalar(select(Todo).where(Todo.id == 1))


async def growth(url: str, schemas: list[str], checkpoints: int) -> list[dict[str, Any]]:
    engine = _engine(url, pool_size=1, max_uses=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    every = max(1, len(schemas) // checkpoints)
    points = []
    try:
        for touched in range(len(schemas) + 1):
            if touched % every == 0 or touched == len(schemas):
                async with engine.connect() as conn:
                    pid = await conn.scalar(text("SELECT pg_backend_pid()"))
                    total, cache = (await conn.execute(await _contexts_query(conn))).one()
                rss = backend_rss(pid) or {}
                points.append(
                    {
                        "tenants_touched": touched,
                        "contexts_mib": total / MIB,
                        "cache_contexts_mib": cache / MIB,
                        "rss_mib": rss["VmRSS"] / MIB if rss else None,
                        "rss_anon_mib": rss["RssAnon"] / MIB if rss else None,
                    }
                )
            if touched < len(schemas):
                await _touch(sessions, schemas[touched])
    finally:
        await engine.dispose()
    return points


async def _contexts_query(conn: AsyncConnection) -> TextClause:
    version = await conn.scalar(text("SELECT current_setting('server_version_num')::int"))
    return MEMORY_CONTEXTS_18 if version >= 180000 else MEMORY_CONTEXTS


class RssSampler:
    """Samples the RSS of every other backend of the database until stopped; keeps peaks."""

    def __init__(self, url: str, interval: float = 0.2) -> None:
        self.url = url
        self.interval = interval
        self.peak_anon: dict[int, int] = {}
        self.peak_total_anon = 0
        self.local = False

    async def run(self) -> None:
        conn = await asyncpg.connect(asyncpg_dsn(self.url))
        try:
            self.local = backend_rss(await conn.fetchval("SELECT pg_backend_pid()")) is not None
            while self.local:
                rows = await conn.fetch(OTHER_BACKENDS)
                sizes = {row["pid"]: backend_rss(row["pid"]) for row in rows}
                anon = {pid: size["RssAnon"] for pid, size in sizes.items() if size}
                for pid, value in anon.items():
                    self.peak_anon[pid] = max(self.peak_anon.get(pid, 0), value)
                self.peak_total_anon = max(self.peak_total_anon, sum(anon.values()))
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()


async def policy_run(
    url: str, schemas: list[str], pool_size: int, max_uses: int, transactions: int
) -> dict[str, Any]:
    engine = _engine(url, pool_size=pool_size, max_uses=max_uses)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    rng = random.Random(11)
    order = [rng.choice(schemas) for _ in range(transactions)]
    sampler = RssSampler(url)
    sampling = asyncio.create_task(sampler.run())

    async def worker(share: list[str]) -> None:
        for schema in share:
            await _touch(sessions, schema)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(order[n::pool_size]) for n in range(pool_size)))
        seconds = time.perf_counter() - started
        await asyncio.sleep(sampler.interval * 2)
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await engine.dispose()
    peaks = sorted(sampler.peak_anon.values())
    return {
        "pool_max_uses": max_uses,
        "pool_size": pool_size,
        "transactions": transactions,
        "transactions_per_second": transactions / seconds,
        "backends_seen": len(peaks),
        "peak_backend_rss_anon_mib": peaks[-1] / MIB if peaks else None,
        "peak_pool_rss_anon_mib": sampler.peak_total_anon / MIB if peaks else None,
        "rss_available": sampler.local and bool(peaks),
    }


async def reconnect_cost_ms(url: str, schemas: list[str], transactions: int) -> float:
    """What replacing a connection adds to one transaction: one connection run sequentially,
    replaced at every checkout (pool_max_uses=1) against never (0), interleaved three times."""
    elapsed = {0: 0.0, 1: 0.0}
    for _ in range(3):
        for max_uses in elapsed:
            engine = _engine(url, pool_size=1, max_uses=max_uses)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            await _touch(sessions, schemas[0])  # the first connection costs both alike
            started = time.perf_counter()
            for n in range(transactions):
                await _touch(sessions, schemas[n % len(schemas)])
            elapsed[max_uses] += time.perf_counter() - started
            await engine.dispose()
    return (elapsed[1] - elapsed[0]) / (3 * transactions) * 1000


async def run_memory(
    databases: BenchDatabases,
    tenants: int,
    checkpoints: int,
    pool_size: int,
    transactions: int,
    policies: list[int],
    reconnect_transactions: int = 200,
) -> dict[str, Any]:
    db = await databases.with_tenants(tenants)
    schemas = [tenant_schema(t.slug) for t in db.tenants]
    curve = await growth(db.url, schemas, checkpoints)
    per_tenant_kib = _slope(curve, "contexts_mib")
    policy = [await policy_run(db.url, schemas, pool_size, uses, transactions) for uses in policies]
    return {
        "tenants": tenants,
        "growth": curve,
        "contexts_kib_per_tenant": per_tenant_kib,
        "rss_anon_kib_per_tenant": _slope(curve, "rss_anon_mib"),
        "reconnect_ms": await reconnect_cost_ms(db.url, schemas, reconnect_transactions),
        "policies": policy,
    }


def _slope(curve: list[dict[str, Any]], key: str) -> float | None:
    """KiB per tenant touched, first to last checkpoint (None without local RSS)."""
    first, last = curve[0], curve[-1]
    if first[key] is None or last[key] is None or last["tenants_touched"] == 0:
        return None
    return (last[key] - first[key]) * 1024 / last["tenants_touched"]

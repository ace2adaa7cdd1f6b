"""What the in-memory registry costs at start-up: load time and memory for N tenants.

    python -m bench.registry_memory [--tenants 100000] [--keys 1] [--rounds 3]

Fills the registry tables of a throwaway database (on TENANTRY_DATABASE_URL's server, or the
embedded one) with N live tenants and `--keys` active keys each (rows only: the directory reads
nothing else), then loads the whole registry the way an API process does at start-up
(`tenancy.registry.resolve_tenants`, one query) and reports, per round: seconds for the load
(query and building the map), the map's Python memory (tracemalloc, MiB) and the process RSS
growth (MiB). Also the cost of a lookup, known slug and unknown slug alike (no query: a dict).
"""

import argparse
import asyncio
import gc
import secrets
import statistics
import time
import tracemalloc

import psutil
from sqlalchemy import make_url, text

from tenancy.database import create_engine, database_url, ensure_database
from tenancy.registry import registry_metadata, resolve_tenants
from tenancy.settings import TenancySettings
from tenancy.testing.drop import drop_database

FILL = """
INSERT INTO tenantry.tenants (slug, schema_name, display_name)
SELECT 'b' || i, 'tenant_b' || i, 'Bench ' || i FROM generate_series(1, :n) AS i;
INSERT INTO tenantry.api_keys (key_id, tenant_id, key_hash)
SELECT substr(md5(t.id::text || '-' || k), 1, 12), t.id, sha256((t.id || '-' || k)::text::bytea)
FROM tenantry.tenants AS t, generate_series(1, :keys) AS k;
"""


async def longest_stall(stalls: list[float]) -> None:
    """Record (in stalls[0]) the longest gap between 1 ms ticks: how long requests would wait."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        await asyncio.sleep(0.001)
        now = loop.time()
        stalls[0] = max(stalls[0], now - last)
        last = now


async def main(tenants: int, keys: int, rounds: int) -> None:
    server = make_url(await database_url(TenancySettings()))
    url = server.set(database=f"tenantry_bench_{secrets.token_hex(4)}").render_as_string(False)
    await ensure_database(url)
    engine = create_engine(url, TenancySettings(database_url=url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA tenantry"))
            await conn.run_sync(registry_metadata.create_all)
            for statement in filter(str.strip, FILL.split(";")):
                await conn.execute(text(statement), {"n": tenants, "keys": keys})
        process = psutil.Process()
        loads, traced, lookups = [], [], {"known": [], "unknown": []}
        stalls: list[float] = [0.0]
        gc.collect()
        rss_before = process.memory_info().rss
        for round_ in range(rounds + 1):
            if round_ == rounds:  # a last load under tracemalloc (slow): the map's own size
                tracemalloc.start()
            started = time.perf_counter()
            ticker = asyncio.create_task(longest_stall(stalls if round_ < rounds else [0.0]))
            async with engine.connect() as conn:
                loaded = await resolve_tenants(conn)
            ticker.cancel()
            if round_ == rounds:
                traced.append(tracemalloc.get_traced_memory()[0] / 2**20)
                tracemalloc.stop()
            else:
                loads.append(time.perf_counter() - started)
            if round_ == 0:
                rss = (process.memory_info().rss - rss_before) / 2**20
            assert len(loaded) == tenants
            known = [f"b{i}" for i in range(1, tenants + 1, max(1, tenants // 10000))]
            unknown = [f"x{i}" for i in range(len(known))]
            for label, slugs in (("known", known), ("unknown", unknown)):
                started = time.perf_counter()
                for slug in slugs:
                    loaded.get(slug)
                lookups[label].append((time.perf_counter() - started) / len(slugs) * 1e9)
            del loaded
            gc.collect()
        print(f"{tenants} tenants x {keys} key(s), {rounds} rounds (median):")
        print(f"  load (one query + building the map): {statistics.median(loads):.2f} s")
        print(f"  longest event-loop stall in a load:  {max(stalls) * 1000:.0f} ms")
        print(f"  map, Python heap (tracemalloc):      {statistics.median(traced):.0f} MiB")
        print(f"  process RSS growth, first load:      {rss:.0f} MiB")
        known_ns, unknown_ns = (statistics.median(lookups[k]) for k in ("known", "unknown"))
        print(f"  dict lookup, known / unknown slug:   {known_ns:.0f} / {unknown_ns:.0f} ns")
    finally:
        await engine.dispose()
        await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.tenants, args.keys, args.rounds))

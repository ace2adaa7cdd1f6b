"""One fleet grown in one database and measured at each size (the engine of bench/fleet.py).

The fleet lives in a database of its own on TENANTRY_DATABASE_URL's server (or the embedded
one). Results are saved after every size, so a run stopped early keeps what it measured. The
database is dropped at the end unless a name is given to keep it (its API keys are kept beside
the results, so a later run can grow it).
"""

import json
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.fleet_bench.grow import FleetTenant, KeysFile, grow, seed_todos
from bench.fleet_bench.measure import catalog, migrations, requests
from bench.request_path.load import percentile
from bench.request_path.measure import LoadShape
from service.paths import ALEMBIC_INI
from tenancy.database import bootstrap_url, create_engine, ensure_database
from tenancy.migrate.run import upgrade_shared_schema
from tenancy.migrate.tracks import load_tracks
from tenancy.naming import REGISTRY_SCHEMA
from tenancy.settings import TenancySettings
from tenancy.testing.drop import drop_database


async def _registry_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(text(f"SELECT count(*) FROM {REGISTRY_SCHEMA}.tenants"))


async def run(
    sizes: list[int], database: str | None, concurrency: int, shape: LoadShape, out: Path
) -> dict[str, Any]:
    settings = TenancySettings()
    server_url = await bootstrap_url(settings)
    name = database or f"tenantry_fleet_{secrets.token_hex(3)}"
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    keys = KeysFile(out / f"{name}-keys.jsonl")
    if await ensure_database(url):
        keys.path.unlink(missing_ok=True)
    await upgrade_shared_schema(url, load_tracks(ALEMBIC_INI))
    engine = create_engine(
        url, TenancySettings(database_url=url, pool_size=concurrency, max_overflow=0)
    )
    tenants: list[FleetTenant] = keys.load()
    results: dict[str, Any] = {
        "database": name,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "concurrency": concurrency,
        "pool": f"pool_size {settings.pool_size} + max_overflow {settings.max_overflow},"
        f" pool_max_schemas {settings.pool_max_schemas}, pool_max_uses {settings.pool_max_uses}",
        "shape": shape.__dict__,
        "points": [],
    }
    try:
        async with engine.connect() as conn:
            results["server"] = (await conn.scalar(text("SHOW server_version"))).split()[0]
        if await _registry_count(engine) != len(tenants):
            raise SystemExit(f"{name}: the registry and {keys.path} disagree; drop the database")
        if not tenants:
            results["empty"] = await catalog(url)  # the baseline that per-tenant figures subtract
        for size in sizes:
            if size < len(tenants):
                print(f"\n{size:,} tenants: skipped, the fleet already has {len(tenants):,}")
                continue
            print(f"\n{size:,} tenants", flush=True)
            before = len(tenants)
            growth = await grow(engine, tenants, size, concurrency, keys)
            print(f"    grew by {growth.created:,} in {growth.seconds:.0f} s", flush=True)
            await engine.dispose()  # its backends would count in the memory sampled below
            await seed_todos(url, tenants[before:])
            point: dict[str, Any] = {
                "tenants": size,
                "onboard_per_s_at_n": growth.tail_rate(min(1000, max(2, size // 10))),
                "create_p50_ms": percentile(sorted(growth.latencies), 0.5) * 1000,
                "create_p99_ms": percentile(sorted(growth.latencies), 0.99) * 1000,
                "create_mean_ms": statistics.fmean(growth.latencies) * 1000
                if growth.latencies
                else float("nan"),
            }
            point.update(await catalog(url))
            last = size == sizes[-1] and database is None
            point.update(await migrations(url, tenants, last))
            point.update(await requests(url, tenants, shape, sampling=0.2))
            results["points"].append(point)
            results["load_after"] = os.getloadavg()[0]
            (out / "fleet.json").write_text(json.dumps(results, indent=1))
            print(json.dumps(point, indent=1), flush=True)
    finally:
        await engine.dispose()
        if database is None:
            await drop_database(url)
            keys.path.unlink(missing_ok=True)
    return results

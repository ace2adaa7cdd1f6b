"""What TENANTRY_PGBOUNCER costs, and what PgBouncer itself costs: requests per second of the real
app under uvicorn, as the runtime role, three ways, measured in one run.

    .venv/bin/python -m bench.pgbouncer [--requests 2000] [--concurrency 20]

Uses TENANTRY_DATABASE_URL's server (embedded when unset) and a throwaway database it drops.
"""

import argparse
import asyncio
import os
import time
from contextlib import ExitStack

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from service.app import create_app
from service.paths import ALEMBIC_INI
from tenancy.database import bootstrap_url, ensure_database
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import load_tracks
from tenancy.roles import setup_roles
from tenancy.settings import TenancySettings
from tenancy.testing.drop import drop_database
from tenancy.testing.pgbouncer import installed, running_pgbouncer
from tenancy.testing.replay_builders import replayed
from tenancy.testing.servers import client, running_server
from tenancy.testing.throwaway import run_alembic, throwaway_url

RUNTIME_ROLE = "tenantry_bench_api"


async def requests_per_second(
    settings: TenancySettings, slug: str, key: str, n: int, concurrency: int
) -> float:
    """Half reads of one todo, half pages of ten, from `concurrency` clients at once."""
    async with (
        running_server(create_app(settings)) as base_url,
        client(base_url, slug, key) as http,
    ):
        todo = (await http.post("/todos", json={"content": "bench"})).json()["id"]
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                path = f"/todos/{todo}" if i % 2 else "/todos?limit=10"
                assert (await http.get(path)).status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - started)


async def main(n: int, c: int) -> None:
    owner = throwaway_url(await bootstrap_url(TenancySettings()), "bench")
    await ensure_database(owner)
    os.environ["TENANTRY_DATABASE_URL"] = owner
    try:
        assert run_alembic(ALEMBIC_INI, "upgrade", "head").returncode == 0
        engine = create_async_engine(owner)
        async with engine.begin() as conn:
            await setup_roles(conn, RUNTIME_ROLE)
        tenant = await create_tenant(engine, replayed(load_tracks(ALEMBIC_INI)), "bench")
        await engine.dispose()
        runtime = make_url(owner).set(username=RUNTIME_ROLE).render_as_string(False)
        pool = {"pool_size": 10, "max_overflow": 0, "owner_database_url": owner}
        with ExitStack() as stack:
            ways = {
                "direct (statement cache on)": TenancySettings(database_url=runtime, **pool),
                "direct, TENANTRY_PGBOUNCER=true": TenancySettings(
                    database_url=runtime, pgbouncer=True, listen_database_url=runtime, **pool
                ),
            }
            if installed():
                bouncer = stack.enter_context(running_pgbouncer(runtime, [RUNTIME_ROLE], 10))
                ways[f"through {bouncer.version}"] = TenancySettings(
                    database_url=bouncer.url, pgbouncer=True, listen_database_url=runtime, **pool
                )
            else:
                print("pgbouncer is not installed: the way through it is left out")
            results = {
                name: await requests_per_second(s, tenant.slug, tenant.api_key, n, c)
                for name, s in ways.items()
            }
    finally:
        await drop_database(owner)
    base = next(iter(results.values()))
    print(f"{n} GET requests, {c} concurrent clients, pool of 10")
    print(f"| {'way':<36} | req/s | ratio |\n|{'-' * 38}|------:|------:|")
    for name, rate in results.items():
        print(f"| {name:<36} | {rate:5.0f} | {rate / base:5.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))

"""The fleet benchmark still runs end to end on a tiny fleet (real onboarding, real `tenantry`
commands, real uvicorn and load), so it cannot rot between real runs. Timings are never asserted;
the figure needs matplotlib (the `bench` extra), which `make test` does not install."""

import asyncio
import math
from pathlib import Path

import asyncpg

from bench.fleet_bench.report import tables
from bench.fleet_bench.run import run
from bench.request_path.measure import LoadShape
from tenancy.database import asyncpg_dsn

SIZES = [2, 4]
SHAPE = LoadShape(duration=0.5, warmup=0.1, connections=2, rounds=1, todos=1)


async def database_exists(url: str, name: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(
            "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name
        )
    finally:
        await conn.close()


async def test_the_fleet_benchmark_measures_every_size_and_cleans_up(
    database: str, tmp_path: Path
) -> None:
    results = await run(SIZES, None, concurrency=2, shape=SHAPE, out=tmp_path)

    assert [point["tenants"] for point in results["points"]] == SIZES
    small, large = results["points"]
    assert large["pg_class_rows"] > small["pg_class_rows"] > results["empty"]["pg_class_rows"]
    assert large["database_bytes"] > results["empty"]["database_bytes"]
    for point in results["points"]:
        for key in ("onboard_per_s_at_n", "add_column_per_s", "requests_per_s"):
            assert point[key] > 0 and math.isfinite(point[key]), key
        assert point["create_p50_ms"] > 0 and point["noop_engine_s"] > 0
        assert point["requests_measured"] > 0 and point["backends_seen"] >= 1
    assert not await database_exists(database, results["database"])  # the throwaway was dropped
    assert await asyncio.to_thread(lambda: list(tmp_path.glob("*-keys.jsonl"))) == []

    markdown = tables(results)
    assert "\n| 2 | " in markdown and "\n| 4 | " in markdown

"""The fleet benchmark still runs end to end on a tiny fleet (real onboarding, real `tenantry`
commands, real uvicorn and load), so it cannot rot between real runs. Timings are never asserted;
the figure needs matplotlib (the `bench` extra), which `make test` does not install. The benchmark
runs as `python -m bench.fleet`, its own process; its JSON and tables are read back."""

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import asyncpg

from service.paths import PROJECT_ROOT
from tenancy.database import asyncpg_dsn

SIZES = [2, 4]
SHAPE = ["--duration", "0.5", "--warmup", "0.1", "--connections", "2"]


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
    sizes = ["--tenants", str(SIZES[-1]), "--checkpoints", ",".join(map(str, SIZES[:-1]))]
    command = [sys.executable, "-m", "bench.fleet", *sizes, "--concurrency", "2", *SHAPE]
    run = await asyncio.to_thread(
        subprocess.run,
        [*command, "--out", str(tmp_path)],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads((tmp_path / "fleet.json").read_text())

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

    markdown = run.stdout
    assert "\n| 2 | " in markdown and "\n| 4 | " in markdown

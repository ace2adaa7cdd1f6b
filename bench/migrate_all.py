"""Migrating a fleet: `tenantry migrate` against the Alembic cookbook loop and raw asyncpg DDL.

For each size, one throwaway database full of tenants at the project's head, and a copy of the
project's Alembic setup with one more tenant revision (add a nullable column). On the same
tenants, in one run, each method takes every tenant (the cookbook loop: a random sample) from
0001 to 0002; raw SQL puts them back between methods (untimed). Then the no-op: `tenantry
migrate` again with every tenant at head, in process and as the real command.

    python -m bench.migrate_all                        # 1,000 and 10,000 tenants
    python -m bench.migrate_all --sizes 200 --write    # and rewrite bench/README.md's section

Uses TENANTRY_DATABASE_URL's server, or the embedded one; never touches existing databases.
"""

import argparse
import asyncio
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.lanes import each_schema, script
from bench.readme import write_section
from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.database import asyncpg_dsn, bootstrap_url
from tenancy.migrate.connections import open_connections
from tenancy.migrate.progress import reporter_for
from tenancy.migrate.results import Outcome
from tenancy.migrate.run import RunOptions, migrate_fleet
from tenancy.migrate.tracks import load_tracks
from tenancy.settings import TenancySettings
from tenancy.testing.fleets import ADD_PRIORITY, Fleet, scratch_alembic, throwaway_fleet
from tenancy.testing.throwaway import run_alembic, throwaway_url

RESULTS = PROJECT_ROOT / "bench" / "results" / "migrate_all.json"
START, END = "<!-- migrate_all:start -->", "<!-- migrate_all:end -->"
TENANTRY = str(Path(sys.executable).parent / "tenantry")
UPGRADE = "ALTER TABLE {s}.todos ADD COLUMN priority INTEGER; UPDATE {s}.alembic_version SET version_num = '0002' WHERE version_num = '0001'"  # noqa: E501
RESET = "ALTER TABLE {s}.todos DROP COLUMN priority; UPDATE {s}.alembic_version SET version_num = '0001'"  # noqa: E501


@dataclass
class Measure:
    method: str
    tenants: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.tenants / self.seconds if self.seconds else 0.0


@dataclass
class SizeResult:
    size: int
    setup_seconds: float
    measures: list[Measure]

    def rate(self, method: str) -> float:
        return next(m.rate for m in self.measures if m.method == method)

    def seconds(self, method: str) -> float:
        return next(m.seconds for m in self.measures if m.method == method)


async def timed(method: str, tenants: int, work: Callable[[], Awaitable[object]]) -> Measure:
    started = time.perf_counter()
    await work()
    measure = Measure(method, tenants, time.perf_counter() - started)
    print(f"  {method:<34} {tenants:>6} tenants {measure.seconds:8.2f} s {measure.rate:9.0f}/s")
    return measure


async def raw_sql(url: str, schemas: Sequence[str], template: str, connections: int) -> None:
    """The same DDL and version update by hand: one transaction per tenant, no checks."""
    await each_schema(url, schemas, connections, script(template))


async def cookbook_loop(fleet: Fleet, ini: Path, slugs: Sequence[str]) -> None:
    """One `alembic -x tenant=SLUG upgrade head` process per tenant, one after another."""
    for slug in slugs:
        result = await asyncio.to_thread(
            run_alembic,
            ini,
            "-x",
            f"tenant={slug}",
            "upgrade",
            "head",
            env=fleet.env(ini),
            cwd=PROJECT_ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr)


async def tenantry_engine(fleet: Fleet, ini: Path, concurrency: int, expect: Outcome) -> None:
    options = RunOptions(concurrency=concurrency)
    summary = await migrate_fleet(fleet.url, load_tracks(ini), options, reporter_for(io.StringIO()))
    if summary.count(expect) != len(fleet.tenants):
        raise RuntimeError(f"expected every tenant {expect}: {summary.totals()}")


async def tenantry_command(fleet: Fleet, ini: Path, concurrency: int) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [TENANTRY, "migrate", "--concurrency", str(concurrency)],
        env=fleet.env(ini),
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr)


async def bench_size(server_url: str, size: int, sample: int, concurrency: int) -> SizeResult:
    print(f"\n{size} tenants")
    async with throwaway_fleet(
        throwaway_url(server_url, "bench"), ALEMBIC_INI, pool_size=8
    ) as fleet:
        started = time.perf_counter()
        await fleet.add_tenants("b", size, concurrency=8)
        setup = time.perf_counter() - started
        print(f"  setup: {size} tenants created in {setup:.1f} s ({size / setup:.0f}/s, 8 at once)")
        schemas = [tenant.schema for tenant in fleet.tenants]
        sampled = random.Random(size).sample(fleet.tenants, min(sample, size))
        with tempfile.TemporaryDirectory() as folder:
            ini = scratch_alembic(Path(folder), [ADD_PRIORITY], ALEMBIC_INI)
            measures = [
                await timed(
                    "cookbook loop (sample)",
                    len(sampled),
                    lambda: cookbook_loop(fleet, ini, [t.slug for t in sampled]),
                )
            ]
            await raw_sql(fleet.url, [t.schema for t in sampled], RESET, concurrency)
            for lanes in (1, concurrency):
                measures.append(
                    await timed(
                        f"raw asyncpg DDL x{lanes}",
                        size,
                        lambda lanes=lanes: raw_sql(fleet.url, schemas, UPGRADE, lanes),
                    )
                )
                await raw_sql(fleet.url, schemas, RESET, concurrency)
            measures.append(
                await timed(
                    f"tenantry migrate x{concurrency}",
                    size,
                    lambda: tenantry_engine(fleet, ini, concurrency, Outcome.MIGRATED),
                )
            )
            measures.append(
                await timed(
                    "no-op: tenantry migrate (engine)",
                    size,
                    lambda: tenantry_engine(fleet, ini, concurrency, Outcome.CURRENT),
                )
            )
            measures.append(
                await timed(
                    "no-op: `tenantry migrate` command",
                    size,
                    lambda: tenantry_command(fleet, ini, concurrency),
                )
            )
    return SizeResult(size, setup, measures)


def table(results: list[SizeResult], concurrency: int) -> str:
    fast = f"tenantry migrate x{concurrency}"
    raw = f"raw asyncpg DDL x{concurrency}"
    lines = [
        "| tenants | cookbook loop (sample) | raw DDL x1 | raw DDL "
        f"x{concurrency} | `tenantry migrate` x{concurrency} | vs cookbook | vs raw "
        f"x{concurrency} | no-op engine | no-op command | setup |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cookbook = next(m for m in r.measures if m.method.startswith("cookbook"))
        each_ms = cookbook.seconds / cookbook.tenants * 1000
        lines.append(
            f"| {r.size:,} | {cookbook.rate:,.1f}/s ({each_ms:,.0f} ms each, n={cookbook.tenants})"
            f" | {r.rate('raw asyncpg DDL x1'):,.0f}/s"
            f" | {r.rate(raw):,.0f}/s | **{r.rate(fast):,.0f}/s** ({r.seconds(fast):.1f} s)"
            f" | {r.rate(fast) / cookbook.rate:,.0f}x | {r.rate(fast) / r.rate(raw):.2f}x"
            f" | {r.seconds('no-op: tenantry migrate (engine)'):.2f} s"
            f" | {r.seconds('no-op: `tenantry migrate` command'):.2f} s"
            f" | {r.setup_seconds:.0f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated tenant counts")
    parser.add_argument("--cookbook-sample", type=int, default=15, help="tenants per cookbook run")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--write", action="store_true", help="rewrite bench/README.md's section, keep the JSON"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    async def run() -> tuple[str, list[SizeResult]]:
        server_url = await bootstrap_url(TenancySettings())
        async with open_connections(asyncpg_dsn(server_url), 1) as (conn,):
            server = await conn.fetchval("SHOW server_version")
        return server, [
            await bench_size(server_url, size, args.cookbook_sample, args.concurrency)
            for size in sizes
        ]

    load_before = os.getloadavg()[0]
    server, results = asyncio.run(run())
    markdown = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M')}, PostgreSQL {server.split()[0]}, "
        f"{os.cpu_count()} cores, load average (1 min) {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after the run.\n\n" + table(results, args.concurrency)
    )
    print("\n" + markdown)
    if args.write:
        write_section(START, END, markdown)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps([asdict(r) for r in results], indent=1))


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    main()

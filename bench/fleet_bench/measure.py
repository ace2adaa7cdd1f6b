"""What is measured at each fleet size: migrations, status, the catalog, requests and memory.

Every number comes from the real thing: `tenantry migrate` (its engine in process, and the
command as a new process), `tenantry migrate status` as a command, one add-column revision from a
scratch copy of the Alembic setup (the real `migrations/` is never touched), PostgreSQL's own
catalog counts and sizes, and real uvicorn serving the real app under a closed-loop load whose
tenants are drawn uniformly from the whole fleet while a sampler reads the backends' memory.
"""

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.fleet_bench.grow import FleetTenant
from bench.lanes import each_schema, script
from bench.request_path.measure import ROUTES, LoadShape, measure, tenant_targets, warm_up
from bench.request_path.memory import MIB, RssSampler
from bench.request_path.servers import ServerSpec, running_servers
from service.paths import ALEMBIC_INI
from tenancy.database import asyncpg_dsn
from tenancy.migrate.connections import open_connections
from tenancy.migrate.progress import reporter_for
from tenancy.migrate.results import Outcome
from tenancy.migrate.run import RunOptions, migrate_fleet
from tenancy.migrate.tracks import load_tracks
from tenancy.testing.fleets import ADD_PRIORITY, scratch_alembic

TENANTRY = str(Path(sys.executable).parent / "tenantry")
APP = "bench.request_path.apps:tenantry"
RESET = (
    "ALTER TABLE {s}.todos DROP COLUMN priority;"
    " UPDATE {s}.alembic_version SET version_num = '0001'"
)
"""Puts a tenant back at 0001 after the add-column run (untimed), for the next size."""

CATALOG = """
SELECT (SELECT count(*) FROM pg_class) AS pg_class_rows,
       (SELECT count(*) FROM pg_attribute) AS pg_attribute_rows,
       (SELECT count(*) FROM pg_namespace) AS schemas,
       pg_database_size(current_database()) AS database_bytes,
       (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
         WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r')::bigint
         AS catalog_bytes
"""


async def timed(label: str, work: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work
    seconds = time.perf_counter() - started
    print(f"    {label:<36} {seconds:9.2f} s", flush=True)
    return seconds, result


async def catalog(url: str) -> dict[str, int]:
    async with open_connections(asyncpg_dsn(url), 1) as (conn,):
        return dict(await conn.fetchrow(CATALOG))


async def migrate_engine(url: str, ini: Path, expect: Outcome, tenants: int) -> None:
    """`tenantry migrate`'s engine with its default concurrency; every tenant must end `expect`."""
    summary = await migrate_fleet(url, load_tracks(ini), RunOptions(), reporter_for(io.StringIO()))
    if summary.count(expect) != tenants:
        raise RuntimeError(f"expected {tenants} tenants {expect}: {summary.totals()}")


async def command(url: str, ini: Path, *args: str) -> str:
    """A `tenantry` command as a new process (interpreter start and imports included)."""
    env = {**os.environ, "TENANTRY_DATABASE_URL": url, "TENANTRY_ALEMBIC_INI": str(ini)}
    result = await asyncio.to_thread(
        subprocess.run, [TENANTRY, *args], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"tenantry {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


async def reset_revision(url: str, schemas: list[str], connections: int = 4) -> None:
    await each_schema(url, schemas, connections, script(RESET))


async def migrations(url: str, tenants: list[FleetTenant], last: bool) -> dict[str, float]:
    """No-op runs, `migrate status`, then one add-column revision over every tenant."""
    n = len(tenants)
    row: dict[str, float] = {}
    row["status_command_s"], out = await timed(
        "tenantry migrate status (command)",
        command(url, ALEMBIC_INI, "migrate", "status", "--json"),
    )
    if json.loads(out)["tenants"] != n:
        raise RuntimeError(f"migrate status counted {json.loads(out)['tenants']}, not {n}")
    row["noop_engine_s"], _ = await timed(
        "no-op migrate (engine)", migrate_engine(url, ALEMBIC_INI, Outcome.CURRENT, n)
    )
    row["noop_command_s"], _ = await timed(
        "no-op tenantry migrate (command)", command(url, ALEMBIC_INI, "migrate")
    )
    with tempfile.TemporaryDirectory() as folder:
        ini = scratch_alembic(Path(folder), [ADD_PRIORITY], ALEMBIC_INI)
        row["add_column_s"], _ = await timed(
            "add-column revision (engine)", migrate_engine(url, ini, Outcome.MIGRATED, n)
        )
    row["add_column_per_s"] = n / row["add_column_s"]
    if not last:
        await timed("  (untimed) back to 0001", reset_revision(url, [t.schema for t in tenants]))
    return row


async def requests(
    url: str, tenants: list[FleetTenant], shape: LoadShape, sampling: float
) -> dict[str, Any]:
    """One warm-up request per tenant (first visits: every tenant once, in order), then the
    measured load over tenants drawn uniformly, while the backends' memory is sampled."""
    targets = tenant_targets(tenants)  # FleetTenant has BenchTenant's slug and api_key
    with running_servers({"fleet": ServerSpec(APP, {"TENANTRY_DATABASE_URL": url})}) as servers:
        server = servers["fleet"]
        _, first = await timed("first visit of every tenant", warm_up(server, targets, shape))
        sampler = RssSampler(url, interval=sampling)
        task = asyncio.create_task(sampler.run())
        try:
            _, runs = await timed(
                "uniform load (measured)", measure([server], [targets], ROUTES, shape)
            )
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    steady = runs[0]["total"]
    if first["total"]["errors"] or steady["errors"]:
        raise RuntimeError(f"requests failed: {first['total']}, {steady}")
    peaks = sorted(sampler.peak_anon.values())
    return {
        "first_visit_p50_ms": first["total"]["p50_ms"],
        "first_visit_p99_ms": first["total"]["p99_ms"],
        "requests_per_s": steady["throughput"],
        "request_p50_ms": steady["p50_ms"],
        "request_p99_ms": steady["p99_ms"],
        "requests_measured": steady["requests"],
        "app_cpu_us": runs[0]["server_cpu_us"],
        "backends_seen": len(peaks),
        "backend_rss_anon_peak_mib": peaks[-1] / MIB if peaks else None,
        "backends_rss_anon_peak_total_mib": sampler.peak_total_anon / MIB if peaks else None,
    }

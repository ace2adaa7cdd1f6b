"""What the pool's policy costs: Tenantry and the independent baseline, each under two pools.

    python -m bench.independent.pool [--tenants 100] [--requests 8000] [--repeats 2] [--write]

Each server runs one variant; each measurement sends `--requests` requests (the two routes in
turn, `--connections` keep-alive connections (16), closed loop) after as many unmeasured ones,
to one server at a time, and reads: **new connections** per 1,000 requests (PostgreSQL's
`pg_stat_database.sessions`, summed over the server's databases, before and after), **app CPU**
(the server process's user + system time per request) and **DB CPU** (the whole PostgreSQL
server's, per request, as `bench.independent.compare.database_cpu_seconds` reads it; the server
should run nothing else). Variants: each app with SQLAlchemy's overflow (`pool_size` 10 +
`max_overflow` 5, Tenantry's defaults before this measurement) and with one pool of 15 and no
overflow (Tenantry's defaults since); Tenantry's earlier replacement after 1,000 uses
(`pool_max_uses`) goes with the first, as it shipped. Medians over `--repeats`.
"""

import asyncio
import json
import os
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer

from bench.independent.compare import (
    _asyncpg_dsn,
    baseline_database,
    baseline_variant,
    database_cpu_seconds,
    shipped,
)
from bench.readme import write_section
from bench.request_path.databases import BenchDatabases, log
from bench.request_path.load import LoadSpec, run_load
from bench.request_path.measure import PLAIN_TARGETS, ROUTES, tenant_targets
from bench.request_path.servers import ServerSpec, running_servers
from tenancy.database import bootstrap_url
from tenancy.settings import TenancySettings

RESULTS = Path(__file__).resolve().parents[1] / "results"
OVERFLOW = {"pool_size": "10", "max_overflow": "5"}
NO_OVERFLOW = {"pool_size": "15", "max_overflow": "0"}
SESSIONS = "SELECT sum(sessions)::bigint FROM pg_stat_database"


def variants() -> dict[str, tuple[tuple[str, ...], dict[str, str], bool]]:
    """name -> (command, environment, serves tenants)."""
    tenantry, baseline = shipped(), baseline_variant()

    def tenantry_env(pool: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
        return {f"TENANTRY_{key.upper()}": value for key, value in pool.items()} | extra

    def baseline_env(pool: dict[str, str]) -> dict[str, str]:
        return {f"BASELINE_{key.upper()}": value for key, value in pool.items()}

    old_uses = {"TENANTRY_POOL_MAX_USES": "1000", "TENANTRY_POOL_MAX_SCHEMAS": "0"}
    return {
        "tenantry, 10 + 5 overflow, 1,000 uses": (
            tenantry.command,
            tenantry_env(OVERFLOW, old_uses),
            True,
        ),
        "tenantry, 15 + 0 (defaults)": (tenantry.command, tenantry_env(NO_OVERFLOW, {}), True),
        "baseline, 10 + 5 overflow": (baseline.command, baseline_env(OVERFLOW), False),
        "baseline, 15 + 0": (baseline.command, baseline_env(NO_OVERFLOW), False),
    }


async def run_pool(
    server_url: str, tenants: int, requests: int, repeats: int, connections: int = 16
) -> dict[str, Any]:
    databases = BenchDatabases(server_url, 30)
    conn = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        tenant_db = await databases.with_tenants(tenants)
        plain_url = await baseline_database(databases)
        specs, targets = {}, {}
        for name, (command, env, serves_tenants) in variants().items():
            url = {"TENANTRY_DATABASE_URL": tenant_db.url, "BASELINE_DATABASE_URL": plain_url}
            specs[name] = ServerSpec("", {**url, **env}, command)
            targets[name] = tenant_targets(tenant_db.tenants) if serves_tenants else PLAIN_TARGETS
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in specs}
        with running_servers(specs) as servers:
            for repeat in range(repeats):
                for name, server in servers.items():
                    spec = LoadSpec(
                        targets=[{"port": server.port, "tenants": targets[name]}],
                        routes=ROUTES,
                        todos=30,
                        duration=600,
                        connections=connections,
                        max_requests=requests,
                    )
                    await asyncio.to_thread(run_load, spec)  # warm: every statement prepared
                    sessions, app, db = (
                        await conn.fetchval(SESSIONS),
                        server.cpu_seconds(),
                        await database_cpu_seconds(conn),
                    )
                    result = await asyncio.to_thread(run_load, spec)
                    issued = result["targets"][0]["issued"]
                    samples[name].append(
                        {
                            "new_connections_per_1000": (await conn.fetchval(SESSIONS) - sessions)
                            / issued
                            * 1000,
                            "app_cpu_us": (server.cpu_seconds() - app) / issued * 1e6,
                            "db_cpu_us": (await database_cpu_seconds(conn) - db) / issued * 1e6,
                        }
                    )
                log(f"  repeat {repeat + 1}/{repeats}, load {os.getloadavg()[0]:.1f}")
    finally:
        await conn.close()
        await databases.drop_all()
    medians = {
        name: {key: statistics.median(s[key] for s in rows) for key in rows[0]}
        for name, rows in samples.items()
    }
    return {
        "tenants": tenants,
        "requests": requests,
        "repeats": repeats,
        "connections": connections,
        "medians": medians,
    }


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"Measured {results['measured_at']}, {os.cpu_count()} cores, load average (1 min) "
        f"{results['load'][0]:.1f} before and {results['load'][1]:.1f} after; "
        f"{results['tenants']} tenants, {results['connections']} connections, "
        f"{results['requests']} requests per measurement, "
        f"medians of {results['repeats']}.",
        "",
        "| server and pool | new connections per 1,000 requests | app CPU µs/req | "
        "DB CPU µs/req (whole server) |",
        "|---|---:|---:|---:|",
    ]
    for name, m in results["medians"].items():
        lines.append(
            f"| {name} | {m['new_connections_per_1000']:.1f} | {m['app_cpu_us']:.0f} "
            f"| {m['db_cpu_us']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(
    tenants: Annotated[int, typer.Option(help="Tenants of the Tenantry servers")] = 100,
    requests: Annotated[int, typer.Option(help="Requests per measurement")] = 8000,
    repeats: Annotated[int, typer.Option(help="Measurements per server")] = 2,
    connections: Annotated[int, typer.Option(help="Keep-alive connections")] = 16,
    write: Annotated[bool, typer.Option(help="Rewrite bench/README.md's section")] = False,
    out: Annotated[Path, typer.Option(help="Results (JSON)")] = RESULTS,
) -> None:
    server_url = asyncio.run(bootstrap_url(TenancySettings()))
    before = os.getloadavg()[0]
    results = asyncio.run(run_pool(server_url, tenants, requests, repeats, connections))
    results["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    results["load"] = [before, os.getloadavg()[0]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "independent_pool.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    typer.echo(table)
    if write:
        write_section("<!-- independent_pool:start -->", "<!-- independent_pool:end -->", table)


if __name__ == "__main__":
    typer.run(main)

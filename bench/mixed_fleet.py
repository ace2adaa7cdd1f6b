"""Mixed fleets under load: does a fleet whose tenants differ in shape cost anything?

    python -m bench.mixed_fleet [--tenants 10] [--rounds 3] [--duration 2] [--readme]

The same load (8 keep-alive connections, tenants drawn at random, `GET /todos/{id}` through the
ORM and `GET /bench/todos/{id}`, a `SELECT *` that returns every column of the row, so every
column's type is in the result) against fleets of `--tenants` tenants, each in a database of
its own:

- (a) uniform: every tenant at the project's head;
- (b) revision skew: half the tenants with `todos.content` widened to varchar(4000);
- (c) a per-tenant enum: `todo_state` and `todos.state` with a server default in every tenant;
- (d) (c) through PgBouncer (transaction pooling, `server_reset_query = DEALLOCATE ALL`);
- (a') (a) through the same PgBouncer: (d)'s like-for-like reference.

Each server is one uvicorn worker with a pool of 2 connections (so connections switch tenants
all the time); the load alternates between the servers in slices, rounds rotate their order.
Reported per fleet: req/s, 5xx answers, dropped connections and the database's
`pg_stat_database.xact_rollback` over the measured run (each fleet has a database of its own,
so the count is its own), and the ratio of req/s to (a)'s (to (a')'s for (d)).
"""

import argparse
import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, HTTPException
from sqlalchemy import make_url, text
from starlette.types import ASGIApp

from bench.readme import write_section
from bench.request_path.apps import tenantry
from bench.request_path.databases import BenchDatabases, TenantDatabase, log
from bench.request_path.measure import LoadShape, measure, median, rotated, tenant_targets
from bench.request_path.servers import ServerSpec, running_servers
from service.deps import TenantSession
from tenancy.database import asyncpg_dsn, bootstrap_url
from tenancy.naming import quote_schema, tenant_schema
from tenancy.settings import TenancySettings
from tenancy.testing.pgbouncer import installed, running_pgbouncer

ROUTES = {"orm": "/todos/{id}", "select_star": "/bench/todos/{id}"}
RESULTS = Path(__file__).resolve().parent / "mixed_fleet.json"
MARKERS = ("<!-- mixed_fleet:start -->", "<!-- mixed_fleet:end -->")

WIDEN = ("ALTER TABLE {schema}.todos ALTER COLUMN content TYPE varchar(4000)",)
ENUM = (
    "CREATE TYPE {schema}.todo_state AS ENUM ('open', 'done')",
    "ALTER TABLE {schema}.todos ADD COLUMN state {schema}.todo_state NOT NULL DEFAULT 'open'",
)

router = APIRouter()


@router.get("/bench/todos/{todo_id}")
async def select_star(todo_id: int, session: TenantSession) -> dict[str, Any]:
    """Every column of one todo: whatever types this tenant's table has are in the result."""
    row = await session.execute(text("SELECT * FROM todos WHERE id = :id"), {"id": todo_id})
    found = row.mappings().first()
    if found is None:
        raise HTTPException(404)
    return {"content": found["content"], "columns": len(found)}


def app() -> ASGIApp:
    """uvicorn factory: the service as shipped, plus the SELECT * route."""
    bench_app = tenantry()
    bench_app.app.include_router(router)
    return bench_app


@dataclass
class Fleet:
    name: str
    database: TenantDatabase
    pgbouncer: bool = False


async def reshape(database: TenantDatabase, statements: tuple[str, ...], share: float) -> None:
    """Run statements in the first `share` of the fleet's tenants (one transaction)."""
    conn = await asyncpg.connect(asyncpg_dsn(database.url))
    try:
        async with conn.transaction():
            for tenant in database.tenants[: round(len(database.tenants) * share)]:
                schema = quote_schema(tenant_schema(tenant.slug))
                for statement in statements:
                    await conn.execute(statement.format(schema=schema))
    finally:
        await conn.close()


async def rollbacks(url: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetchval(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()


def server_env(fleet: Fleet, bouncer_url: str | None) -> dict[str, str]:
    env = {
        "TENANTRY_DATABASE_URL": bouncer_url if fleet.pgbouncer else fleet.database.url,
        "TENANTRY_POOL_SIZE": "2",
        "TENANTRY_MAX_OVERFLOW": "0",
        "TENANTRY_LOG_LEVEL": "WARNING",
    }
    if fleet.pgbouncer:
        env |= {"TENANTRY_PGBOUNCER": "true", "TENANTRY_LISTEN_DATABASE_URL": fleet.database.url}
    return env


@dataclass(frozen=True)
class Options:
    tenants: int = 10
    rounds: int = 3
    duration: float = 2.0
    """Measured seconds per fleet per round."""
    warmup: float = 0.5
    todos: int = 20


async def run(server_url: str, options: Options) -> dict[str, Any]:
    """Build the fleets on server_url's server, measure them, drop them; rows per fleet."""

    shape = LoadShape(options.duration, options.warmup, 8, options.rounds, options.todos)
    pools = [BenchDatabases(server_url, options.todos) for _ in range(3)]
    try:
        uniform, skewed, enum = [await p.with_tenants(options.tenants) for p in pools]
        await reshape(skewed, WIDEN, 0.5)
        await reshape(enum, ENUM, 1.0)
        fleets = [Fleet("a", uniform), Fleet("b", skewed), Fleet("c", enum)]
        if installed():
            # PgBouncer serves one database per [databases] entry: (d) and (a') get one each.
            fleets += [Fleet("d", enum, pgbouncer=True), Fleet("a'", uniform, pgbouncer=True)]
        else:
            log("pgbouncer is not installed: (d) and (a') are left out")
        return await measure_fleets(fleets, shape, running_pgbouncer)
    finally:
        for pool in pools:
            await pool.drop_all()


async def measure_fleets(fleets: list[Fleet], shape: LoadShape, running_pgbouncer) -> dict:
    from contextlib import ExitStack

    with ExitStack() as stack:
        bouncers: dict[str, str] = {}
        for fleet in fleets:
            if fleet.pgbouncer and fleet.database.url not in bouncers:
                user = make_url(fleet.database.url).username or "postgres"
                bouncer = stack.enter_context(running_pgbouncer(fleet.database.url, [user], 2))
                bouncers[fleet.database.url] = bouncer.url
        specs = {
            f.name: ServerSpec("bench.mixed_fleet:app", server_env(f, bouncers.get(f.database.url)))
            for f in fleets
        }
        servers = stack.enter_context(running_servers(specs))
        runs: dict[str, list[dict[str, Any]]] = {f.name: [] for f in fleets}
        for round_no in range(shape.rounds):
            order = rotated(fleets, round_no)
            before = {f.name: await rollbacks(f.database.url) for f in order}
            results = await measure(
                [servers[f.name] for f in order],
                [tenant_targets(f.database.tenants) for f in order],
                ROUTES,
                shape,
            )
            for fleet, result in zip(order, results, strict=True):
                result["rollbacks"] = await rollbacks(fleet.database.url) - before[fleet.name]
                runs[fleet.name].append(result)
            log(f"  round {round_no + 1}/{shape.rounds} done")
    return summarize(runs)


def summarize(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per fleet: median req/s and p99 over the rounds; 5xx, drops, rollbacks summed."""
    rows = {}
    for name, results in runs.items():
        requests = sum(r["issued"] for r in results)
        rows[name] = {
            "throughput": median([r["total"]["throughput"] for r in results]),
            "p99_ms": median([r["total"]["p99_ms"] for r in results]),
            "requests": requests,
            "server_errors": sum(r["total"]["server_errors"] for r in results),
            "dropped": sum(r["total"]["dropped"] for r in results),
            "errors": sum(r["total"]["errors"] for r in results),
            "rollbacks": sum(r["rollbacks"] for r in results),
        }
        # (a) and (a') rollbacks bound the app's own (read-only registry transactions end so)
    for name, row in rows.items():
        reference = rows.get("a'" if name == "d" else "a")
        row["ratio"] = row["throughput"] / reference["throughput"] if reference else None
        row["rollback_share"] = row["rollbacks"] / max(row["requests"], 1)
    return rows


LABELS = {
    "a": "(a) uniform",
    "b": "(b) two revisions, a type change",
    "c": "(c) per-tenant enum",
    "d": "(d) (c) through PgBouncer",
    "a'": "(a') (a) through PgBouncer",
}


def markdown(rows: dict[str, Any], options: Options) -> str:
    lines = [
        f"Measured by `python -m bench.mixed_fleet --tenants {options.tenants} --rounds "
        f"{options.rounds} --duration {options.duration}`: {options.tenants} tenants per fleet, "
        "one uvicorn worker per fleet with a pool of 2, 8 connections, the fleets interleaved "
        "in one run. Ratio: req/s over (a)'s, for (d) over (a')'s.",
        "",
        "| fleet | req/s | ratio | p99 ms | requests | 5xx | dropped | rollbacks |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        ratio = f"{row['ratio']:.2f}x" if row["ratio"] is not None else "-"
        lines.append(
            f"| {LABELS[name]} | {row['throughput']:.0f} | {ratio} | {row['p99_ms']:.1f} | "
            f"{row['requests']} | {row['server_errors']} | {row['dropped']} | {row['rollbacks']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Options()
    parser.add_argument("--tenants", type=int, default=defaults.tenants)
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds")
    parser.add_argument("--warmup", type=float, default=defaults.warmup)
    parser.add_argument("--todos", type=int, default=defaults.todos)
    parser.add_argument("--readme", action="store_true", help="write bench/README.md's section")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = vars(parser.parse_args())
    readme, out = args.pop("readme"), args.pop("out")
    options = Options(**args)
    server_url = asyncio.run(bootstrap_url(TenancySettings()))
    rows = asyncio.run(run(server_url, options))
    out.write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows, options)
    print(table)
    if readme:
        write_section(*MARKERS, table)


if __name__ == "__main__":
    main()

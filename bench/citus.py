"""Tenantry on a Citus cluster beside one PostgreSQL server, same tenants, same run.

    python -m bench.citus --tenants 40      # make bench-citus BENCH_ARGS="--tenants 40"

The cluster is the one `deploy/citus/cluster.sh start` runs (TENANTRY_DATABASE_URL at its
coordinator, TENANTRY_CITUS_WORKERS its workers; `make bench-citus` starts and stops it); the
one server is TENANTRY_SINGLE_URL (default: this machine's PostgreSQL at 127.0.0.1:5432). On each,
in a throwaway database: onboarding (ms per tenant, one at a time), `tenantry migrate` over every
tenant for an add-column, a create-index, a drop-index and a drop-column revision and for
nothing to do, `tenantry tenants list`'s query (fresh connection, as the CLI has), the same
listing query with the schema list bound as name[] (what it was before), request p50/p99 (GET and
POST /todos, one client at a time), and `pg_class` rows per node. Results: bench/results/citus.json
and the table in bench/README.md.
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.readme import write_section
from service.app import create_app
from service.onboarding import tenant_blueprint
from service.paths import ALEMBIC_INI
from tenancy.database import asyncpg_dsn, create_engine
from tenancy.lifecycle.inventory import tenant_inventory
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.results import Outcome
from tenancy.migrate.tracks import load_tracks
from tenancy.settings import TenancySettings
from tenancy.testing.citus import CITUS_WORKERS_ENV, citus_workers, on_node
from tenancy.testing.fleets import PROJECT_HEAD, Fleet, Revision, scratch_alembic
from tenancy.testing.servers import client, running_server
from tenancy.testing.throwaway import create_test_database, drop_test_database, throwaway_url

RESULTS = Path(__file__).resolve().parent / "results" / "citus.json"
START, END = "<!-- citus:start -->", "<!-- citus:end -->"
SCALE_OUT = Path(__file__).resolve().parents[1] / "docs" / "scale-out.md"
DOC_START, DOC_END = "<!-- citus:figures -->", "<!-- /citus:figures -->"

REVISIONS = [
    Revision(
        "0002",
        PROJECT_HEAD,
        'op.add_column("todos", sa.Column("priority", sa.Integer(), nullable=True))',
        'op.drop_column("todos", "priority")',
    ),
    Revision(
        "0003",
        "0002",
        'op.create_index("ix_todos_priority", "todos", ["priority"])',
        'op.drop_index("ix_todos_priority", table_name="todos")',
    ),
]
MIGRATIONS = [
    ("add column", "0002"),
    ("create index", "0003"),
    ("drop index", "0002"),
    ("drop column", PROJECT_HEAD),
    ("nothing to do", PROJECT_HEAD),
]

NAME_ARRAY = """SELECT n.nspname, coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'm', 'S')
WHERE n.nspname = ANY($1) GROUP BY n.nspname"""
"""The listing's size query as it was: `nspname = ANY($1)` makes $1 a name[], which asyncpg
looks up in the catalog on every new connection."""


@dataclass
class Result:
    target: str
    tenants: int
    onboarding_ms: float = 0.0
    migrate_s: dict[str, float] = field(default_factory=dict)
    listing_ms: float = 0.0
    listing_name_array_ms: float = 0.0
    request_ms: dict[str, float] = field(default_factory=dict)
    pg_class: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def bench_target(target: str, server_url: str, tenants: int, requests: int) -> Result:
    url = throwaway_url(server_url, "bench")
    result = Result(target, tenants)
    await create_test_database(url)
    try:
        with tempfile.TemporaryDirectory() as folder:
            ini = scratch_alembic(Path(folder), REVISIONS, ALEMBIC_INI)
            tracks = load_tracks(ini)
            settings = TenancySettings(database_url=url, pool_size=4)
            engine = create_engine(url, settings)
            fleet = Fleet(url, engine, [], ini)
            try:
                await fleet.migrate(tracks)  # the shared schema; no tenants yet
                blueprint = tenant_blueprint(load_tracks(ALEMBIC_INI))
                timings = []
                for n in range(tenants):
                    started = time.perf_counter()
                    fleet.tenants.append(await create_tenant(engine, blueprint, f"b-{n}"))
                    timings.append(time.perf_counter() - started)
                result.onboarding_ms = statistics.median(timings) * 1000
                for label, target_rev in MIGRATIONS:
                    started = time.perf_counter()
                    summary = await fleet.migrate(tracks, target=target_rev)
                    result.migrate_s[label] = time.perf_counter() - started
                    assert summary.count(Outcome.FAILED) == 0, fleet.log.getvalue()
                result.listing_ms = await listing_ms(url)
                result.listing_name_array_ms = await name_array_ms(url, fleet)
                result.request_ms = await request_latency(settings, fleet, requests)
                result.pg_class = await pg_class_rows(url)
            finally:
                await engine.dispose()
    finally:
        await drop_test_database(url)
    return result


async def listing_ms(url: str) -> float:
    """`tenantry tenants list`'s query on a new connection, as each CLI run has."""
    fresh = create_engine(url, TenancySettings(database_url=url))
    try:
        started = time.perf_counter()
        async with fresh.connect() as conn:
            await tenant_inventory(conn)
        return (time.perf_counter() - started) * 1000
    finally:
        await fresh.dispose()


async def name_array_ms(url: str, fleet: Fleet) -> float:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        started = time.perf_counter()
        await conn.fetch(NAME_ARRAY, [t.schema for t in fleet.tenants])
        return (time.perf_counter() - started) * 1000
    finally:
        await conn.close()


async def request_latency(
    settings: TenancySettings, fleet: Fleet, requests: int
) -> dict[str, float]:
    timings: list[float] = []
    async with running_server(create_app(settings)) as base_url:
        clients = [client(base_url, t.slug, t.api_key) for t in fleet.tenants]
        try:
            for n in range(requests):
                http = clients[n % len(clients)]
                started = time.perf_counter()
                if n % 2:
                    response = await http.get("/todos?limit=10")
                else:
                    response = await http.post("/todos", json={"content": f"bench {n}"})
                timings.append(time.perf_counter() - started)
                assert response.status_code < 300, response.text
        finally:
            for http in clients:
                await http.aclose()
    warm = timings[len(clients) :]  # each client's first request opens a connection
    return {"p50": percentile(warm, 0.5) * 1000, "p99": percentile(warm, 0.99) * 1000}


async def pg_class_rows(url: str) -> dict[str, int]:
    nodes = {"coordinator" if citus_workers() else "server": url}
    for n, (host, port) in enumerate(citus_workers(), start=1):
        nodes[f"worker {n}"] = on_node(url, host, port)
    rows = {}
    for name, node_url in nodes.items():
        conn = await asyncpg.connect(asyncpg_dsn(node_url))
        try:
            await conn.execute("SET citus.override_table_visibility TO off")  # count the shards
            rows[name] = await conn.fetchval("SELECT count(*) FROM pg_class")
        finally:
            await conn.close()
    return rows


def table(results: list[Result]) -> str:
    one, cluster = results

    def row(label: str, shape: str, value: Callable[[Result], object]) -> str:
        return f"| {label} | {shape.format(value(one))} | {shape.format(value(cluster))} |"

    def nodes(result: Result) -> str:
        return " / ".join(f"{rows:,}" for rows in result.pg_class.values())

    lines = [
        f"{one.tenants} tenants, the same run, one machine (2 cores): one PostgreSQL 15 server"
        " vs. a Citus 13.2 coordinator and two workers (PostgreSQL 15 on the same machine, so"
        " no network between nodes).",
        "",
        "| | one server | Citus cluster |",
        "|---|---:|---:|",
        row("onboarding, per tenant (median)", "{:.0f} ms", lambda r: r.onboarding_ms),
        *(
            row(f"migrate all: {label}", "{:.2f} s", lambda r, label=label: r.migrate_s[label])
            for label, _ in MIGRATIONS
        ),
        row("`tenants list` query, new connection", "{:.0f} ms", lambda r: r.listing_ms),
        row("the same, schemas bound as name[] (before)", "{:.0f} ms",
            lambda r: r.listing_name_array_ms),
        row("request p50", "{:.1f} ms", lambda r: r.request_ms["p50"]),
        row("request p99", "{:.1f} ms", lambda r: r.request_ms["p99"]),
        row("`pg_class` rows (server; coordinator / workers)", "{}", nodes),
    ]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=40)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite bench/README.md")
    args = parser.parse_args()
    if not os.environ.get(CITUS_WORKERS_ENV):
        sys.exit(f"error: {CITUS_WORKERS_ENV} is not set (make bench-citus starts a cluster)")
    single = os.environ.get(
        "TENANTRY_SINGLE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    coordinator = os.environ["TENANTRY_DATABASE_URL"]

    async def run() -> list[Result]:
        workers = os.environ.pop(CITUS_WORKERS_ENV)
        citus_workers.cache_clear()
        one = await bench_target("one server", single, args.tenants, args.requests)
        os.environ[CITUS_WORKERS_ENV] = workers
        citus_workers.cache_clear()
        cluster = await bench_target("citus", coordinator, args.tenants, args.requests)
        return [one, cluster]

    results = asyncio.run(run())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps([vars(r) for r in results], indent=2))
    markdown = table(results)
    print(markdown)
    if not args.no_readme:
        write_section(START, END, markdown)
        source = "\n\nMeasured with `bench/citus.py` (`make bench-citus`); details in"
        source += " [bench/README.md](../bench/README.md#citus-the-cluster-beside-one-server)."
        write_section(DOC_START, DOC_END, markdown + source, SCALE_OUT)


if __name__ == "__main__":
    main()

"""Tenantry against the independent baseline (`bench/independent/app.py`), interleaved in one run.

Every server runs at once, one uvicorn worker each, idle unless measured; each round is one run
per route that alternates between all of them in slices (`bench.request_path.measure`), so the
load of this shared machine weighs on all alike. Per server and run: requests per second and
latency from the load generator, and **app CPU** (the server process's user + system CPU time
per request, µs). Ratios are taken within a round, medians over rounds reported.

The database side (`db_work`) is measured apart, one server at a time in steady state: the
statements `pg_stat_statements` counted (the server must preload it: calls, plans, planning and
execution time) and the **DB CPU** of the whole PostgreSQL server per request (every backend,
and what the postmaster reaped from backends that exited; the server should run nothing else).
Backends' CPU counters tick in 10 ms steps, too coarse to split a 2 s interleaved slice among
servers, hence the separate run.
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from sqlalchemy import insert, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.independent.app import Base, Todo
from bench.request_path.databases import PLAIN_MARKER, BenchDatabases, log
from bench.request_path.load import LoadSpec, run_load
from bench.request_path.measure import (
    PLAIN_TARGETS,
    ROUTES,
    LoadShape,
    measure,
    ratio_summary,
    rotated,
    run_row,
    tenant_targets,
    warm_up,
)
from bench.request_path.servers import Server, ServerSpec, running_servers
from service.paths import PROJECT_ROOT
from tenancy.settings import TenancySettings

BASELINE = "baseline"
TENANTRY = str(Path(sys.executable).parent / "tenantry")
LOG_OFF = {"TENANTRY_LOG_LEVEL": "WARNING"}


@dataclass(frozen=True)
class Variant:
    """One server under test: how it is started, and whether it serves tenants."""

    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    tenants: bool = True
    tree: str | None = None
    """Another source tree to run (the "before" variants): put first on PYTHONPATH."""


def baseline_variant() -> Variant:
    """The independent app under uvicorn's defaults (uvloop and httptools, as installed by
    uvicorn[standard], the same extras as Tenantry), with no access log."""
    command = (sys.executable, "-m", "uvicorn", "--factory", "bench.independent.app:create_app")
    command += ("--host", "127.0.0.1", "--port", "{port}", "--no-access-log")
    return Variant((*command, "--log-level", "warning"), tenants=False)


def shipped(env: dict[str, str] | None = None, tree: str | None = None) -> Variant:
    """`tenantry serve`, the real command, default settings unless `env` says otherwise."""
    return Variant((TENANTRY, "serve", "--port", "{port}"), env or {}, tree=tree)


def main_variants(before: str | None, before_with_edge: str | None = None) -> dict[str, Variant]:
    variants = {
        "tenantry": shipped(),
        "tenantry, access log off": shipped(LOG_OFF),
        BASELINE: baseline_variant(),
    }
    if before:
        variants["before: tenantry"] = shipped(tree=before)
        variants["before: tenantry, access log off"] = shipped(LOG_OFF, tree=before)
    if before_with_edge:
        variants["before + this edge: tenantry"] = shipped(tree=before_with_edge)
    return variants


@contextmanager
def source_tree(ref: str, overlay: tuple[str, ...] = ()) -> Iterator[str]:
    """The project at git `ref`, exported to a temporary directory (never a worktree), with the
    files named in `overlay` (paths from the project root) copied over from the current tree."""
    with tempfile.TemporaryDirectory(prefix="tenantry-ref-") as tree:
        archive = subprocess.run(
            ["git", "archive", ref], cwd=PROJECT_ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        for path in overlay:
            shutil.copyfile(Path(PROJECT_ROOT, path), Path(tree, path))
        yield tree


async def baseline_database(databases: BenchDatabases) -> str:
    """A database of the baseline's own: its `todos` table, seeded like every tenant's."""
    url = await databases._new_database("baseline")
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            rows = [{"content": f"{PLAIN_MARKER} todo {n}"} for n in range(1, databases.todos + 1)]
            await conn.execute(insert(Todo), rows)
    finally:
        await engine.dispose()
    return url


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def database_cpu_seconds(conn: asyncpg.Connection) -> float:
    """CPU seconds so far of the whole PostgreSQL server: every backend alive, plus what the
    postmaster has reaped from backends that exited (a pool replacing connections)."""
    postmaster = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()")).parent()
    assert postmaster is not None
    mine = postmaster.cpu_times()
    total = mine.user + mine.system + mine.children_user + mine.children_system
    for child in postmaster.children():
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def run_comparison(
    server_url: str,
    variants: dict[str, Variant],
    tenants: int,
    shape: LoadShape,
    db_work_requests: int = 0,
    settle_requests: int = 0,
) -> dict[str, Any]:
    """Every variant interleaved for `shape.rounds` rounds per route, after `settle_requests`
    unmeasured requests to each server (the two routes in turn, random tenants: until the
    connections hold their prepared statements and plans, a steady state); with
    db_work_requests, then the steady-state database work of the first variant and of the
    baseline."""
    databases = BenchDatabases(server_url, shape.todos)
    try:
        tenant_db = await databases.with_tenants(tenants)
        plain_url = await baseline_database(databases)
        specs, targets = {}, {}
        for name, variant in variants.items():
            env = {**variant.env, "TENANTRY_DATABASE_URL": tenant_db.url}
            if not variant.tenants:
                env = {"BASELINE_DATABASE_URL": plain_url, **_pool_like_tenantry()}
            if variant.tree:
                env["PYTHONPATH"] = variant.tree
            specs[name] = ServerSpec("", env, variant.command, cwd=variant.tree)
            targets[name] = tenant_targets(tenant_db.tenants) if variant.tenants else PLAIN_TARGETS
        load_before = os.getloadavg()[0]
        runs: list[dict[str, Any]] = []
        with running_servers(specs) as servers:
            for name, server in servers.items():
                await warm_up(server, targets[name], shape)
                if settle_requests:
                    await asyncio.to_thread(
                        run_load, _steady_load(server, targets[name], settle_requests, shape)
                    )
            for round_ in range(shape.rounds):
                for route in ROUTES:
                    order = rotated(list(variants), round_)
                    measured = await measure(
                        [servers[n] for n in order],
                        [targets[n] for n in order],
                        {route: ROUTES[route]},
                        shape,
                    )
                    for name, target in zip(order, measured, strict=True):
                        runs.append(run_row(target, round=round_, route=route, variant=name))
                log(f"  round {round_ + 1}/{shape.rounds}, load {os.getloadavg()[0]:.1f}")
            work = {}
            if db_work_requests:
                first = next(iter(variants))
                for name in (first, BASELINE):
                    work[name] = await db_work(
                        server_url, servers[name], targets[name], db_work_requests, shape
                    )
        return {
            "tenants": tenants,
            "shape": shape.__dict__,
            "load_average": [load_before, os.getloadavg()[0]],
            "cpus": os.cpu_count(),
            "runs": runs,
            "summary": summarize(runs, list(variants)),
            "db_work": work,
        }
    finally:
        await databases.drop_all()


def _pool_like_tenantry() -> dict[str, str]:
    """The baseline's pool sized as Tenantry's defaults (TenancySettings: pool_size, max_overflow),
    so that neither server opens and closes connections the other keeps."""
    fields = TenancySettings.model_fields
    return {
        "BASELINE_POOL_SIZE": str(fields["pool_size"].default),
        "BASELINE_MAX_OVERFLOW": str(fields["max_overflow"].default),
    }


def summarize(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, Any]]:
    """Per route and variant: medians over rounds, and the throughput ratio to the baseline
    taken within each round."""
    return ratio_summary(runs, variants, BASELINE)


STATEMENTS = """\
SELECT s.query, s.calls, s.plans, s.total_plan_time, s.total_exec_time
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = $1"""


async def db_work(
    server_url: str,
    server: Server,
    targets: list[dict[str, Any]],
    requests: int,
    shape: LoadShape,
) -> dict[str, Any]:
    """`requests` requests (the two routes in turn) to one server alone, after a warm-up, and
    what `pg_stat_statements` counted in its database meanwhile, per request."""
    conn = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        spec = _steady_load(server, targets, requests, shape)
        await asyncio.to_thread(run_load, spec)  # steady state: every statement prepared
        datname = await _database_of(conn, server)
        await conn.execute("SELECT pg_stat_statements_reset()")
        app_before, db_before = server.cpu_seconds(), await database_cpu_seconds(conn)
        result = await asyncio.to_thread(run_load, spec)
        app_cpu, db_cpu = (
            server.cpu_seconds() - app_before,
            await database_cpu_seconds(conn) - db_before,
        )
        rows = await conn.fetch(STATEMENTS, datname)
    finally:
        await conn.close()
    issued = result["targets"][0]["issued"]
    totals: dict[str, list[float]] = {}
    for row in rows:
        numbers = totals.setdefault(_statement_kind(row["query"]), [0, 0, 0.0, 0.0, 0])
        numbers[0] += row["calls"]
        numbers[1] += row["plans"]
        numbers[2] += row["total_plan_time"]
        numbers[3] += row["total_exec_time"]
        numbers[4] += 1
    statements = [
        {
            "query": query,
            "texts": int(entries),
            "calls": calls / issued,
            "plans": plans / issued,
            "plan_us": plan_ms * 1000 / issued,
            "exec_us": exec_ms * 1000 / issued,
        }
        for query, (calls, plans, plan_ms, exec_ms, entries) in totals.items()
    ]
    statements.sort(key=lambda s: -s["calls"])
    return {
        "requests": issued,
        "app_cpu_us": app_cpu / issued * 1e6,
        "db_cpu_us": db_cpu / issued * 1e6,
        "statements": statements,
    }


def _steady_load(
    server: Server, targets: list[dict[str, Any]], requests: int, shape: LoadShape
) -> LoadSpec:
    """`requests` requests to one server, the two routes in turn, tenants at random."""
    return LoadSpec(
        targets=[{"port": server.port, "tenants": targets}],
        routes=ROUTES,
        todos=shape.todos,
        duration=600,
        connections=shape.connections,
        max_requests=requests,
    )


_SELECTED_COLUMNS = re.compile(r"^SELECT .*? FROM ")
_TENANT_LITERAL = re.compile(r"(SET LOCAL (?:search_path|application_name) TO ).*")
"""Utility statements (before the request tag became a SELECT, also the tag's SET)."""


def _statement_kind(query: str) -> str:
    """One row per statement whatever its literals: a tenant's schema or a request's tag are
    SQL literals (utility statements are not normalized), so each gets an entry of its own."""
    query = " ".join(query.split())
    query = _TENANT_LITERAL.sub(r"\1...", query)
    return _SELECTED_COLUMNS.sub("SELECT ... FROM ", query)


async def _database_of(conn: asyncpg.Connection, server: Server) -> str:
    """The database the server's pooled connections are in (from their client ports)."""
    ports = [
        c.laddr.port
        for c in psutil.Process(server.process.pid).net_connections(kind="tcp")
        if c.raddr
    ]
    return await conn.fetchval(
        "SELECT datname FROM pg_stat_activity WHERE client_port = ANY($1::int[]) LIMIT 1", ports
    )


async def ensure_statements_extension(server_url: str) -> bool:
    """Whether pg_stat_statements is preloaded there (then its view is made available)."""
    conn = await asyncpg.connect(_asyncpg_dsn(server_url))
    try:
        if "pg_stat_statements" not in (await conn.fetchval("SHOW shared_preload_libraries")):
            return False
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        return True
    finally:
        await conn.close()

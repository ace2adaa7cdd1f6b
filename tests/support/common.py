"""Helpers for the tests: the kit's uvicorn server known to the tests' tenant waits, DB
inspection, the `tenantry` command, metrics."""

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.paths import PROJECT_ROOT
from tenancy.citus import LOCK_WAITS
from tenancy.naming import quote_schema
from tenancy.registry import ResolvedTenant
from tenancy.testing import servers
from tenancy.testing.citus import on_citus

RUNNING_APPS: list[FastAPI] = []
"""Apps served by running_server right now (any thread's loop), for known_to_running_apps."""


async def known_to_running_apps(database_url: str, *slugs: str) -> None:
    """Wait until every running app on this database has these tenants in its in-memory registry.

    A tenant created behind an API's back (the CLI, or a test's own engine) reaches each API
    process through NOTIFY, milliseconds later; a test that calls the API at once waits here.
    Apps whose registry is not trusted read it directly and need no wait."""
    for slug in slugs:
        await seen_by_running_apps(database_url, slug, lambda tenant: tenant is not None)


async def seen_by_running_apps(
    database_url: str, slug: str, check: Callable[[ResolvedTenant | None], bool]
) -> None:
    """Wait until every running app on this database whose registry is trusted holds an entry
    for this slug that passes `check`: a change made behind the APIs' back (a rate limit, a
    status) reaches them through NOTIFY, so a test that depends on it waits here first."""
    database = make_url(database_url).database
    async with asyncio.timeout(10):
        for app in list(RUNNING_APPS):
            runtime = getattr(app.state, "runtime", None)
            if runtime is None or runtime.engine.url.database != database:
                continue
            directory = runtime.directory
            # another task (maybe on another thread's loop) owns this state and signals nothing
            while directory.trusted and not check(directory.cached(slug)):  # noqa: ASYNC110
                await asyncio.sleep(0.005)


@asynccontextmanager
async def running_server(app: FastAPI) -> AsyncIterator[str]:
    """The kit's uvicorn server (tenancy.testing.servers), known to known_to_running_apps while
    it serves; yields its base URL."""
    async with servers.running_server(app) as base_url:
        RUNNING_APPS.append(app)
        try:
            yield base_url
        finally:
            RUNNING_APPS.remove(app)


async def schema_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT nspname FROM pg_namespace"))
        return {row[0] for row in rows}


async def backend_pid(engine: AsyncEngine) -> int:
    """The PostgreSQL backend of the connection a checkout from `engine` gets."""
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT pg_backend_pid()"))


async def row_counts(engine: AsyncEngine) -> dict[str, int]:
    """Rows of every user table in the database, by schema.table: proves nothing was written."""
    async with engine.connect() as conn:
        tables = await conn.execute(
            text("SELECT schemaname, relname FROM pg_stat_user_tables ORDER BY schemaname, relname")
        )
        counts = {}
        for schema, table in tables.all():
            counts[f"{schema}.{table}"] = await conn.scalar(
                text(f'SELECT count(*) FROM "{schema}"."{table}"')
            )
        return counts


async def raw_request(
    base_url: str, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send bytes that a well-behaved client refuses to send (NUL, bare spaces, non-UTF-8)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = [f"{method} {path} HTTP/1.1".encode(), b"Host: " + host.encode()]
    head += [name + b": " + value for name, value in headers]
    head += [b"Content-Type: application/json", f"Content-Length: {len(body)}".encode()]
    head += [b"Connection: close"]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    status_line, _, rest = response.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    response_headers = {}
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        response_headers[name.decode().lower()] = value.decode().strip()
    return int(status_line.split()[1]), response_headers, payload


@asynccontextmanager
async def row_locked(
    engine: AsyncEngine, schema: str, table: str, row_id: int
) -> AsyncIterator[None]:
    """Hold one row's lock in a transaction of our own, so that a request writing it waits."""
    async with engine.connect() as conn, conn.begin():
        await conn.execute(
            text(f"SELECT 1 FROM {quote_schema(schema)}.{table} WHERE id = :id FOR UPDATE"),
            {"id": row_id},
        )
        yield


@asynccontextmanager
async def request_waiting_on_a_row_lock(
    http: httpx.AsyncClient,
    engine: AsyncEngine,
    schema: str,
    application_name_prefix: str,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[tuple[dict, asyncio.Task[httpx.Response]]]:
    """A `PUT /todos/{id}` held mid-transaction by a row lock we hold: yields its backend's
    pg_stat_activity row and the request's task; the lock is released on leaving the block."""
    todo_id = (await http.post("/todos", json={"content": "held"})).json()["id"]
    async with row_locked(engine, schema, "todos", todo_id):
        put = http.put(f"/todos/{todo_id}", json={"content": "x"}, headers=headers or {})
        task = asyncio.create_task(put)
        yield await backend_waiting_on_a_lock(engine, application_name_prefix), task


async def backend_waiting_on_a_lock(engine: AsyncEngine, application_name_prefix: str) -> dict:
    """The pg_stat_activity row of a backend whose application_name starts with the prefix and
    that waits on a lock; polls for up to a minute. On Citus, the coordinator backend of a
    transaction that waits on a lock on any node (tenancy.citus.LOCK_WAITS)."""
    query = text(
        "SELECT pid, application_name, query, wait_event_type FROM pg_stat_activity "
        "WHERE starts_with(application_name, :prefix) AND wait_event_type = 'Lock'"
    )
    if on_citus():  # the wait is on a worker; LOCK_WAITS names the coordinator's backend
        query = text(
            "SELECT pid, application_name, query, wait_event_type FROM"
            f" ({LOCK_WAITS}) waits WHERE starts_with(application_name, :prefix)"
        )
    async with engine.connect() as conn:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(60):  # a hang guard, not a clock
                while True:
                    row = (await conn.execute(query, {"prefix": application_name_prefix})).first()
                    if row is not None:
                        return dict(row._mapping)
                    await conn.rollback()  # a fresh snapshot of pg_stat_activity on the next read
                    await asyncio.sleep(0.05)
    raise AssertionError(f"no backend named {application_name_prefix}* waited on a lock")


TENANTRY = str(Path(sys.executable).parent / "tenantry")


def run_tenantry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real `tenantry` command, in the project folder (env: defaults to ours)."""
    return subprocess.run(
        [TENANTRY, *args],
        cwd=PROJECT_ROOT,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def metric_samples(exposition: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(exposition) for s in family.samples]


def metric_value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the one sample with this name and (at least) these labels; 0 when absent."""
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else 0.0

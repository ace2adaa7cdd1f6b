"""Many concurrent requests over a tiny pool: no tenant ever sees another's rows, and no pooled
connection keeps a tenant's search_path. A negative control proves the check can fail."""

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import pytest
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from service.app import create_app
from tenancy.dependencies import tenant_session
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.naming import quote_schema
from tenancy.settings import TenancySettings
from tenancy.testing.replay_builders import replayed
from tenancy.testing.servers import client
from tests.support.common import running_server
from tests.support.project import make_settings

TENANTS = 6
REQUESTS = 300


async def naive_session_level_search_path(request: Request) -> AsyncIterator[AsyncSession]:
    """The classic mistake: a session-level SET, never reset, so it rides along in the pool."""
    runtime = request.state.runtime
    async with runtime.sessionmaker() as session:
        schema = quote_schema(request.state.tenant.schema)
        await session.execute(text(f"SET search_path TO {schema}"))
        yield session
        await session.commit()


async def pooled_search_paths(engine: AsyncEngine, pool_size: int) -> list[tuple[str, str]]:
    """(current, server default) search_path of every connection the pool holds."""
    connections = [await engine.connect() for _ in range(pool_size)]
    try:
        return [
            (
                await conn.scalar(text("SELECT current_setting('search_path')")),
                await conn.scalar(
                    text("SELECT reset_val FROM pg_settings WHERE name = 'search_path'")
                ),
            )
            for conn in connections
        ]
    finally:
        for conn in connections:
            await conn.close()


async def isolation_problems(
    settings: TenancySettings,
    tenants: list[CreatedTenant],
    naive: bool = False,
    *,
    dependency: Callable[..., AsyncIterator[AsyncSession]] | None = None,
    requests: int = REQUESTS,
) -> list[str]:
    """Runs the concurrent load and returns every leak it saw (empty when isolated).

    naive (or another `dependency` in place of tenant_session) is for negative controls."""
    app = create_app(settings)
    if naive or dependency:
        app.dependency_overrides[tenant_session] = dependency or naive_session_level_search_path
    problems: list[str] = []
    async with running_server(app) as base_url:
        clients = {t.slug: client(base_url, t.slug, t.api_key) for t in tenants}
        rng = random.Random(3)

        async def one(n: int) -> None:
            tenant = rng.choice(tenants)
            http = clients[tenant.slug]
            if n % 3 == 0:
                response = await http.post("/todos", json={"content": f"{tenant.slug} #{n}"})
            elif n % 3 == 1:
                response = await http.get("/todos", params={"limit": 100})
            else:
                response = await http.get("/todos/1")
            if response.status_code >= 400:
                problems.append(f"{tenant.slug}: HTTP {response.status_code}")
                return
            body = response.json()
            contents = (
                [t["content"] for t in body["items"]] if "items" in body else [body["content"]]
            )
            problems.extend(
                f"{tenant.slug} got {c!r}" for c in contents if not c.startswith(tenant.slug)
            )

        await asyncio.gather(*(one(n) for n in range(requests)))
        for http in clients.values():
            await http.aclose()
        for current, default in await pooled_search_paths(
            app.state.runtime.engine, settings.pool_size
        ):
            if current != default:
                problems.append(f"pooled connection kept search_path {current!r}")
    return problems


@pytest.fixture
async def six_tenants(engine: AsyncEngine, tracks, new_slug: str) -> list[CreatedTenant]:
    tenants = [
        await create_tenant(engine, replayed(tracks), f"{new_slug}-{n}") for n in range(TENANTS)
    ]
    async with engine.begin() as conn:
        for tenant in tenants:
            await conn.execute(
                text(f"INSERT INTO {quote_schema(tenant.schema)}.todos (content) VALUES (:c)"),
                {"c": f"{tenant.slug} first"},
            )
    return tenants


async def test_300_concurrent_requests_over_2_connections_stay_isolated(
    database: str, six_tenants: list[CreatedTenant]
) -> None:
    # pool_timeout: 300 requests queue for 2 connections; on a Citus cluster on 2 busy cores
    # the queue can outlast the default 10 s, which would be a 500, not a leak.
    settings = make_settings(database, pool_size=2, max_overflow=0, pool_timeout=120)
    assert await isolation_problems(settings, six_tenants) == []


@pytest.mark.negative_control
async def test_negative_control_session_level_search_path_is_caught(
    database: str, six_tenants: list[CreatedTenant], without_session_reset: None
) -> None:
    settings = make_settings(database, pool_size=2, max_overflow=0)
    problems = await isolation_problems(settings, six_tenants, naive=True)
    assert any("kept search_path" in p for p in problems), problems

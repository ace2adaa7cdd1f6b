"""/metrics: requests by route template and status, the pool, tenants by status (cached), and
migrate runs recorded by the CLI; no per-tenant label unless asked for."""

import asyncio
import re

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.lifecycle.status import set_status
from tenancy.migrate.tracks import Tracks
from tenancy.naming import quote_schema
from tenancy.observability.registry_metrics import RegistryStats
from tenancy.settings import TenancySettings
from tenancy.testing.replay_builders import replayed
from tenancy.testing.servers import client
from tests.support.common import (
    metric_samples,
    metric_value,
    request_waiting_on_a_row_lock,
    run_tenantry,
    running_server,
)
from tests.support.project import run_alembic

REQUESTS = "tenantry_http_requests_total"
DURATION_COUNT = "tenantry_http_request_duration_seconds_count"
POOL = "tenantry_db_pool_connections"


async def scrape(http: httpx.AsyncClient) -> list:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return metric_samples(response.text)


async def test_requests_are_counted_by_route_template_and_status(
    api: str, tenant: CreatedTenant
) -> None:
    labels_404 = {"method": "GET", "route": "/todos/{todo_id}", "status": "404"}
    labels_401 = {**labels_404, "status": "401"}
    labels_201 = {"method": "POST", "route": "/todos", "status": "201"}
    async with client(api, tenant.slug, tenant.api_key) as http:
        before = await scrape(http)
        await http.get("/todos/999998")
        await http.get("/todos/999999")
        await http.post("/todos", json={"content": "counted"})
        await http.get("/todos/1", headers={"Authorization": "Bearer wrong"})
        after = await scrape(http)

    for labels, expected in ((labels_404, 2), (labels_401, 1), (labels_201, 1)):
        for name in (REQUESTS, DURATION_COUNT):
            delta = metric_value(after, name, **labels) - metric_value(before, name, **labels)
            assert delta == expected, (name, labels)
    routes = {s.labels["route"] for s in after if s.name == REQUESTS}
    assert "/todos/{todo_id}" in routes
    assert not any(re.search(r"\d", route) for route in routes)  # templates, never raw ids
    assert not any("tenant" in s.labels for s in after)


async def test_pool_gauges_show_the_connection_a_request_holds(
    api: str, engine: AsyncEngine, settings: TenancySettings, tenant: CreatedTenant
) -> None:
    prefix = f"{settings.application_name}:{tenant.slug}"
    async with client(api, tenant.slug, tenant.api_key) as http:
        async with request_waiting_on_a_row_lock(http, engine, tenant.schema, prefix) as (_, put):
            during = await scrape(http)
        assert (await put).status_code == 200
        after = await scrape(http)
    assert metric_value(during, POOL, state="in_use") >= 1
    assert metric_value(after, POOL, state="in_use") == 0
    assert metric_value(after, POOL, state="idle") >= 1
    assert metric_value(after, "tenantry_db_pool_size") == settings.pool_size


async def test_tenant_counts_come_from_a_cache_that_one_refresh_fills(
    settings: TenancySettings, engine: AsyncEngine, tracks: Tracks, new_slug: str
) -> None:
    app = create_app(settings.model_copy(update={"metrics_registry_cache_seconds": 3600}))
    async with running_server(app) as base_url, client(base_url) as http:
        first = await asyncio.gather(*(scrape(http) for _ in range(20)))
        await create_tenant(engine, replayed(tracks), new_slug)
        cached = await scrape(http)
    stats: RegistryStats = app.state.metrics.registry_stats
    assert stats.refreshes == 1
    active = {metric_value(samples, "tenantry_tenants", status="active") for samples in first}
    assert len(active) == 1 and active.pop() >= 1
    assert metric_value(cached, "tenantry_tenants", status="active") == metric_value(
        first[0], "tenantry_tenants", status="active"
    )


async def test_suspending_a_tenant_moves_it_between_status_counts(
    settings: TenancySettings, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    app = create_app(settings.model_copy(update={"metrics_registry_cache_seconds": 0}))
    async with running_server(app) as base_url, client(base_url) as http:
        before = await scrape(http)
        await set_status(engine, tenant.slug, "suspended")
        after = await scrape(http)
    for status, delta in (("active", -1), ("suspended", 1)):
        moved = metric_value(after, "tenantry_tenants", status=status) - metric_value(
            before, "tenantry_tenants", status=status
        )
        assert moved == delta


async def test_a_tenant_label_is_added_only_when_enabled(
    settings: TenancySettings, tenant: CreatedTenant
) -> None:
    app = create_app(settings.model_copy(update={"metrics_tenant_label": True}))
    async with running_server(app) as base_url, client(base_url, tenant.slug, tenant.api_key) as h:
        await h.get("/todos")
        samples = await scrape(h)
    labels = {"route": "/todos", "status": "200", "tenant": tenant.slug}
    assert metric_value(samples, REQUESTS, **labels) == 1
    assert not any("tenant" in s.labels for s in samples if s.name == DURATION_COUNT)


async def test_migrate_runs_recorded_by_the_cli_reach_the_metrics(fresh, tracks: Tracks) -> None:
    env, engine = fresh
    assert (await asyncio.to_thread(run_alembic, "upgrade", "head", env=env)).returncode == 0
    broken = await create_tenant(engine, replayed(tracks), "broken")
    version_table = f"{quote_schema(broken.schema)}.alembic_version"
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE {version_table} SET version_num = 'no_such_rev'"))
    failed = await asyncio.to_thread(run_tenantry, "migrate", env=env)
    async with engine.begin() as conn:
        await conn.execute(
            text(f"UPDATE {version_table} SET version_num = :head"), {"head": tracks.tenant_head}
        )
    succeeded = await asyncio.to_thread(run_tenantry, "migrate", env=env)
    assert (failed.returncode, succeeded.returncode) == (1, 0), failed.stderr + succeeded.stderr

    stats = RegistryStats(cache_seconds=0)
    await stats.refresh(engine)
    samples = [s for family in stats.collect() for s in family.samples]
    assert metric_value(samples, "tenantry_migrate_runs_total", outcome="failed") == 1
    assert metric_value(samples, "tenantry_migrate_runs_total", outcome="succeeded") == 1
    assert metric_value(samples, "tenantry_migrate_run_duration_seconds_count") == 2
    assert metric_value(samples, "tenantry_migrate_run_duration_seconds_sum") > 0
    assert metric_value(samples, "tenantry_migrate_last_run_failed_tenants") == 0
    assert metric_value(samples, "tenantry_tenants", status="active") == 1

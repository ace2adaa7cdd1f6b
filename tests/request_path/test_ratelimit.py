"""Per-tenant rate limit: a tenant over its burst gets 429 with Retry-After, others go on; limits
come from the registry (tenantry limits ...) or, for tenants without their own, the settings."""

import asyncio
import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.middleware.rate_limit import RateLimiter, TokenBucket
from tenancy.rate_limit_records import set_rate_limit, tenant_limits
from tenancy.registry import ResolvedTenant
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.support.common import run_tenantry, running_server, seen_by_running_apps

SLOW = 0.01
"""Requests per second: a spent token comes back only after 100 s, far beyond any test."""


async def statuses(http: httpx.AsyncClient, count: int) -> list[int]:
    return [(await http.get("/todos")).status_code for _ in range(count)]


async def test_a_tenant_over_its_burst_gets_429_while_another_is_unaffected(
    api: str, engine: AsyncEngine, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    await set_rate_limit(engine, tenant.slug, per_second=SLOW, burst=3)  # before its 1st request
    # the api hears of the limit by NOTIFY: a request that overtook it would be admitted unlimited,
    # and the limit, arriving later, would start a full bucket of its own
    await seen_by_running_apps(
        str(engine.url), tenant.slug, lambda t: t is not None and t.rate_limit_burst == 3
    )
    async with (
        client(api, tenant.slug, tenant.api_key) as limited,
        client(api, other_tenant.slug, other_tenant.api_key) as free,
    ):
        assert await statuses(limited, 3) == [200, 200, 200]
        refused = await limited.get("/todos")
        assert await statuses(free, 20) == [200] * 20
        assert (await limited.get("/todos")).status_code == 429

    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited")
    assert int(refused.headers["Retry-After"]) == 100


async def test_the_settings_default_applies_to_tenants_without_a_limit_of_their_own(
    settings: TenancySettings,
    engine: AsyncEngine,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
) -> None:
    await set_rate_limit(engine, other_tenant.slug, per_second=1000, burst=1000)
    limited = settings.model_copy(update={"rate_limit_per_second": SLOW, "rate_limit_burst": 2})
    async with (
        running_server(create_app(limited)) as base_url,
        client(base_url, tenant.slug, tenant.api_key) as default,
        client(base_url, other_tenant.slug, other_tenant.api_key) as own,
    ):
        assert await statuses(default, 3) == [200, 200, 429]
        assert await statuses(own, 10) == [200] * 10
        assert (await default.get("/healthz")).status_code == 200  # public routes: no tenant


def tenant_with(rate: float | None, burst: int | None) -> ResolvedTenant:
    return ResolvedTenant(1, "acme", "tenant_acme", "active", {}, rate, burst)


def test_a_bucket_refills_at_its_rate_and_says_how_long_to_wait() -> None:
    bucket = TokenBucket(rate=2.0, burst=2, tokens=2, updated=0.0)
    assert [bucket.take(0.0), bucket.take(0.0)] == [0.0, 0.0]
    assert bucket.take(0.0) == 0.5
    assert bucket.take(0.25) == 0.25
    assert bucket.take(0.5) == 0.0
    assert bucket.take(100.0) == 0.0
    assert bucket.tokens == 1  # refilled to the burst, not beyond


def test_own_limits_win_over_the_defaults_and_a_change_starts_a_fresh_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(default_rate=1.0, default_burst=None, clock=lambda: now[0])
    assert limiter.limit_of(tenant_with(None, None)) == (1.0, 1)
    assert limiter.limit_of(tenant_with(2.5, None)) == (2.5, 3)
    assert limiter.limit_of(tenant_with(None, 7)) == (1.0, 7)
    assert RateLimiter(None, 5).limit_of(tenant_with(None, None)) is None
    assert [limiter.wait_time(tenant_with(None, None)) for _ in range(2)] == [0.0, 1.0]
    assert limiter.wait_time(tenant_with(None, 2)) == 0.0  # new limit: full bucket of 2


async def test_limits_commands_set_list_and_clear(
    database: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    set_ = await asyncio.to_thread(
        run_tenantry, "limits", "set", tenant.slug, "--per-second", "5", "--burst", "8"
    )
    assert set_.returncode == 0, set_.stderr
    assert set_.stdout.strip() == f"{tenant.slug}: 5/s, burst 8"
    listed = json.loads((await asyncio.to_thread(run_tenantry, "limits", "list", "--json")).stdout)
    assert {"slug": tenant.slug, "per_second": 5.0, "burst": 8} in listed
    cleared = await asyncio.to_thread(run_tenantry, "limits", "clear", tenant.slug)
    assert cleared.stdout.strip() == f"{tenant.slug}: no limit"
    async with engine.connect() as conn:
        assert tenant.slug not in {limit.slug for limit in await tenant_limits(conn)}
    unknown = await asyncio.to_thread(run_tenantry, "limits", "set", "ghost", "--burst", "2")
    assert (unknown.returncode, unknown.stderr) == (1, "error: unknown tenant 'ghost'\n")
    for rate, burst in ((0.0, None), (None, 0)):
        with pytest.raises(ValueError):
            await set_rate_limit(engine, tenant.slug, rate, burst)


async def test_limits_set_keeps_what_it_is_not_told_and_refuses_no_limit(
    database: str, engine: AsyncEngine, tenant: CreatedTenant, other_tenant: CreatedTenant
) -> None:
    async def limits_set(slug: str, *options: str) -> tuple[int, str, str]:
        result = await asyncio.to_thread(run_tenantry, "limits", "set", slug, *options)
        return result.returncode, result.stdout.strip(), result.stderr

    slug = tenant.slug
    assert await limits_set(slug, "--per-second", "4", "--burst", "8") == (
        0,
        f"{slug}: 4/s, burst 8",
        "",
    )
    assert await limits_set(slug, "--burst", "5") == (0, f"{slug}: 4/s, burst 5", "")
    assert await limits_set(slug, "--per-second", "2") == (0, f"{slug}: 2/s, burst 5", "")
    async with engine.connect() as conn:
        own = {limit.slug: limit for limit in await tenant_limits(conn)}
    assert (own[slug].per_second, own[slug].burst) == (2.0, 5)
    listing = (await asyncio.to_thread(run_tenantry, "limits", "list")).stdout.splitlines()
    assert listing[0].split() == ["SLUG", "OWN", "RATE", "OWN", "BURST", "IN", "FORCE"]
    assert next(line for line in listing if line.startswith(slug + " ")).split() == [
        slug,
        "2/s",
        "5",
        "2/s,",
        "burst",
        "5",
    ]

    code, stdout, stderr = await limits_set(other_tenant.slug, "--burst", "5")
    assert (code, stdout) == (1, "")
    assert len(stderr.splitlines()) == 1 and stderr.startswith("error: ")
    assert "give --per-second too" in stderr
    async with engine.connect() as conn:
        assert other_tenant.slug not in {limit.slug for limit in await tenant_limits(conn)}

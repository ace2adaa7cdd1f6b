"""The registry in memory: unknown slugs cost no query and evict nothing, changes arrive by
NOTIFY, a listener that goes silent stops the map being trusted within seconds, and /readyz
costs no transaction per call. Queries are counted on the app's own engine (every statement
that reads tenantry.tenants), independently of the directory's own counter."""

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import httpx
from fastapi import FastAPI
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.directory import TenantDirectory, set_tcp_keepalive
from tenancy.lifecycle.api_keys import revoke_key
from tenancy.lifecycle.blueprint import TenantBlueprint
from tenancy.lifecycle.onboarding import CreatedTenant, create_tenant
from tenancy.lifecycle.status import set_status
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.request_path.test_request_path_registry import SilentProxy
from tests.support.common import running_server

UNKNOWN = 100_000


class RegistryReads:
    """Counts statements that read the registry's tenants table on an engine (all its pooled
    connections), from the moment it is attached."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        self._engine = engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn, _cursor, statement: str, *_args) -> None:
        if "tenantry.tenants" in statement:
            self.count += 1

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._seen)


@asynccontextmanager
async def served(settings: TenancySettings) -> AsyncIterator[tuple[FastAPI, str, RegistryReads]]:
    app = create_app(settings)
    async with running_server(app) as base_url:
        reads = RegistryReads(app.state.runtime.engine)
        try:
            yield app, base_url, reads
        finally:
            reads.close()


async def until(condition: Callable[[], object], seconds: float = 15) -> None:
    """Hang guard for state another task changes and signals with no event: poll it."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def status_of(http: httpx.AsyncClient, times: int = 1) -> int:
    """The status of GET /todos, the same `times` times in a row."""
    statuses = {(await http.get("/todos")).status_code for _ in range(times)}
    assert len(statuses) == 1, statuses
    return statuses.pop()


def unknown_slugs(n: int) -> list[str]:
    return [f"u{i}-{secrets.token_hex(3)}" for i in range(n)]


async def test_100_000_unknown_slugs_cost_no_query_and_evict_no_tenant(
    settings: TenancySettings, tenant: CreatedTenant
) -> None:
    async with served(settings) as (app, base_url, reads):
        directory: TenantDirectory = app.state.runtime.directory
        assert directory.cached(tenant.slug) is not None  # loaded at start-up
        before = directory.registry_queries
        for slug in unknown_slugs(UNKNOWN):  # the directory itself: fast enough for 100,000
            assert await directory.get(slug) is None
        async with client(base_url) as http:  # and some through the real server
            for slug in unknown_slugs(300):
                headers = {"X-Tenant-ID": slug, "Authorization": "Bearer tnt_000000000000_x"}
                assert (await http.get("/todos", headers=headers)).status_code == 401
        async with client(base_url, tenant.slug, tenant.api_key) as http:
            assert await status_of(http) == 200
        assert (reads.count, directory.registry_queries) == (0, before)
        assert directory.cached(tenant.slug) is not None


async def test_negative_control_a_directory_not_in_sync_reads_the_registry(
    settings: TenancySettings, tenant: CreatedTenant
) -> None:
    """The counters can count: with the listener stopped, each unknown slug is one query."""
    async with served(settings) as (app, base_url, reads):
        await app.state.runtime.listener.stop()
        async with client(base_url) as http:
            for slug in unknown_slugs(5):
                headers = {"X-Tenant-ID": slug, "Authorization": "Bearer tnt_000000000000_x"}
                assert (await http.get("/todos", headers=headers)).status_code == 401
        async with client(base_url, tenant.slug, tenant.api_key) as http:
            assert await status_of(http) == 200  # still served, from the registry itself
        assert reads.count == 6


async def test_a_new_tenant_a_revoked_key_and_a_suspension_arrive_by_notify(
    settings: TenancySettings, engine: AsyncEngine, blueprint: TenantBlueprint, new_slug: str
) -> None:
    async with served(settings) as (app, base_url, reads):
        directory: TenantDirectory = app.state.runtime.directory
        created = await create_tenant(engine, blueprint, new_slug)  # behind the API's back
        async with client(base_url, created.slug, created.api_key) as http:
            await until(lambda: directory.cached(created.slug) is not None)
            assert await status_of(http, 5) == 200

            await set_status(engine, created.slug, "suspended")
            await until(lambda: directory.cached(created.slug).status == "suspended")
            assert await status_of(http, 5) == 403
            await set_status(engine, created.slug, "active")
            await until(lambda: directory.cached(created.slug).is_active)
            assert await status_of(http, 5) == 200

            await revoke_key(engine, created.key_id)
            await until(lambda: not directory.cached(created.slug).key_hashes)
            assert await status_of(http, 5) == 401
        # one reload per notification (4, fewer if batched), none for the 20 requests
        assert 1 <= reads.count <= 4


async def test_the_listener_names_itself_and_keeps_tcp_alive(
    settings: TenancySettings, engine: AsyncEngine, database: str
) -> None:
    name = "tenantry-listen-" + secrets.token_hex(3)
    renamed = settings.model_copy(update={"application_name": name})
    async with served(renamed), engine.connect() as conn:
        names = await conn.scalars(
            text("SELECT application_name FROM pg_stat_activity WHERE application_name = :n"),
            {"n": f"{name}/registry-listener"},
        )
        assert len(names.all()) == 1
    proxy = SilentProxy(database)  # a TCP path to the server, embedded or not
    async with proxy.running() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            assert set_tcp_keepalive(conn, 2.0)
            sock = conn._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 2
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 6000
        finally:
            await conn.close()


async def revoked_key_status_while_notify_is_lost(
    settings: TenancySettings,
    engine: AsyncEngine,
    blueprint: TenantBlueprint,
    database: str,
    check_seconds: float,
    observe: Callable[[httpx.AsyncClient], object],
) -> object:
    """Serve with the LISTEN connection through a proxy, freeze the proxy (a silent death: no
    FIN, no RST), revoke the tenant's key (its NOTIFY is lost), then `observe`."""
    tenant = await create_tenant(engine, blueprint, "s-" + secrets.token_hex(5))
    proxy = SilentProxy(database)
    async with proxy.running() as listen_dsn:
        overrides = {"listen_database_url": listen_dsn, "listen_check_seconds": check_seconds}
        async with (
            served(settings.model_copy(update=overrides)) as (_app, base_url, _reads),
            client(base_url, tenant.slug, tenant.api_key) as http,
        ):
            assert await status_of(http) == 200
            proxy.thawed.clear()
            await revoke_key(engine, tenant.key_id)
            return await observe(http)


async def test_a_silent_listener_stops_a_revoked_key_within_seconds(
    settings: TenancySettings, engine: AsyncEngine, blueprint: TenantBlueprint, database: str
) -> None:
    async def refused(http: httpx.AsyncClient) -> bool:
        async with asyncio.timeout(20):  # hang guard: 3 x check_seconds is the design
            while await status_of(http) != 401:  # noqa: ASYNC110 (polling the server itself)
                await asyncio.sleep(0.1)
        return True

    assert await revoked_key_status_while_notify_is_lost(
        settings, engine, blueprint, database, 1.0, refused
    )


async def test_negative_control_without_the_heartbeat_the_revoked_key_still_works(
    settings: TenancySettings, engine: AsyncEngine, blueprint: TenantBlueprint, database: str
) -> None:
    """The proxy really swallows the NOTIFY: with an hour between heartbeats the in-memory map
    keeps the revoked key for the whole observation."""

    async def statuses(http: httpx.AsyncClient) -> set[int]:
        seen = set()
        for _ in range(20):
            seen.add(await status_of(http))
            await asyncio.sleep(0.15)
        return seen

    assert await revoked_key_status_while_notify_is_lost(
        settings, engine, blueprint, database, 3600.0, statuses
    ) == {200}


async def test_readyz_costs_no_transaction_per_call(settings: TenancySettings) -> None:
    for cache_seconds, most in ((60.0, 1), (0.0, 50)):  # (0.0: the negative control)
        app = create_app(settings.model_copy(update={"readiness_cache_seconds": cache_seconds}))
        async with running_server(app) as base_url, client(base_url) as http:
            checkouts = 0

            def checked_out(*_args: object) -> None:
                nonlocal checkouts
                checkouts += 1

            pool = app.state.runtime.engine.sync_engine.pool
            event.listen(pool, "checkout", checked_out)
            try:
                answers = await asyncio.gather(*(http.get("/readyz") for _ in range(50)))
            finally:
                event.remove(pool, "checkout", checked_out)
        assert {a.status_code for a in answers} == {200}
        assert app.state.readiness.checks == most
        assert checkouts == most

"""Registry lookups: none per request for cached tenants, and a listener that stops hearing from
its connection is replaced (the cache cleared) instead of waiting out the TTL."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from service.app import create_app
from tenancy.directory import RegistryListener, TenantDirectory
from tenancy.lifecycle.api_keys import create_key
from tenancy.lifecycle.onboarding import CreatedTenant
from tenancy.settings import TenancySettings
from tenancy.testing.servers import client
from tests.support.common import running_server


async def test_cached_tenants_cost_no_registry_query_however_many_requests(
    settings: TenancySettings,
    engine: AsyncEngine,
    tenant: CreatedTenant,
    other_tenant: CreatedTenant,
) -> None:
    app = create_app(settings)
    async with running_server(app) as base_url:
        directory: TenantDirectory = app.state.runtime.directory
        tenants = (tenant, other_tenant)
        https = [client(base_url, t.slug, t.api_key) for t in tenants]
        for http in https:
            assert (await http.get("/todos")).status_code == 200
        warm = directory.registry_queries
        for n in range(200):
            path = "/todos" if n % 2 else "/todos/1"
            assert (await https[n % 2].get(path)).status_code in (200, 404)
        assert directory.registry_queries == warm

        await create_key(engine, tenant.slug)  # announced: the next request looks it up again
        for _ in range(100):
            await https[0].get("/todos")
            if directory.registry_queries > warm:
                break
            await asyncio.sleep(0.05)
        assert directory.registry_queries == warm + 1
        for http in https:
            await http.aclose()


class SilentProxy:
    """Forwards TCP to the database until frozen; frozen, it keeps every socket open and
    forwards nothing: a peer that vanished without a FIN or RST."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self.database = url.database
        socket_dir = url.query.get("host")
        if socket_dir:  # the embedded server listens on a Unix socket only
            sockets = [p for p in Path(str(socket_dir)).glob(".s.PGSQL.*") if p.suffix != ".lock"]
            self._open = lambda: asyncio.open_unix_connection(str(sockets[0]))
        else:
            self._open = lambda: asyncio.open_connection(url.host, url.port or 5432)
        self.thawed = asyncio.Event()
        self.thawed.set()
        self.port = 0

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.thawed.wait()
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.thawed.wait()
        up_reader, up_writer = await self._open()
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"
        finally:
            self.thawed.set()
            server.close()


async def until(condition: Callable[[], bool]) -> None:
    """Poll state that another task owns and signals with no event, for at most 10 seconds."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_a_listener_whose_connection_goes_silent_is_replaced_and_the_cache_cleared(
    database: str, engine: AsyncEngine, tenant: CreatedTenant
) -> None:
    directory = TenantDirectory(engine, ttl=3600)
    proxy = SilentProxy(database)
    async with proxy.running() as dsn:
        listener = RegistryListener(dsn, directory, retry_seconds=0.05, check_seconds=0.3)
        await listener.start()
        try:
            await directory.get(tenant.slug)
            await directory.get(tenant.slug)
            assert directory.registry_queries == 1

            proxy.thawed.clear()
            await until(lambda: not listener.listening.is_set())
            await directory.get(tenant.slug)
            assert directory.registry_queries == 2  # the cache was cleared

            proxy.thawed.set()
            await asyncio.wait_for(listener.listening.wait(), 10)
        finally:
            await listener.stop()

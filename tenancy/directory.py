"""The in-process tenant cache, kept fresh by PostgreSQL LISTEN/NOTIFY.

In steady state a request costs no registry round trip; any change to a tenant or its keys is
announced on commit and every process drops its copy at once. A listener that loses its
connection, or stops hearing from it, clears the whole cache. The TTL is only a backstop for
registry rows edited by hand without NOTIFY; it is long (an hour by default) because every
expiry costs one registry query per cached tenant: at 10,000 tenants a 60-second TTL would send
about one request in four to the registry under uniform traffic.
"""

import asyncio
import contextlib
import logging
import time

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.registry import NOTIFY_CHANNEL, ResolvedTenant, resolve_tenant

log = logging.getLogger(__name__)

_MAX_ENTRIES = 100_000


class TenantDirectory:
    """Resolves slugs to tenants, caching hits and misses alike (misses are cheap to forge)."""

    def __init__(self, engine: AsyncEngine, ttl: float) -> None:
        self._engine = engine
        self._ttl = ttl
        self._entries: dict[str, tuple[float, ResolvedTenant | None]] = {}
        self._generation = 0
        self.registry_queries = 0

    async def get(self, slug: str) -> ResolvedTenant | None:
        entry = self._entries.get(slug)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        generation = self._generation
        async with self._engine.connect() as conn:
            tenant = await resolve_tenant(conn, slug)
        self.registry_queries += 1
        if generation == self._generation:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[slug] = (time.monotonic() + self._ttl, tenant)
        return tenant

    def invalidate(self, slug: str) -> None:
        self._generation += 1
        self._entries.pop(slug, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()


class RegistryListener:
    """Listens for registry changes on a connection of its own and invalidates the directory.

    Every `check_seconds` the connection must answer a `SELECT 1`: a connection that died
    silently (no FIN or RST, e.g. a vanished host) would otherwise miss notifications unnoticed,
    so it is replaced and the directory cleared, like after any other disconnection.
    """

    def __init__(
        self,
        dsn: str,
        directory: TenantDirectory,
        retry_seconds: float = 1.0,
        check_seconds: float = 30.0,
    ) -> None:
        self._dsn = dsn
        self._directory = directory
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        """Return once listening, so that no change made after start-up can be missed."""
        self._task = asyncio.create_task(self._run(), name="tenantry-registry-listener")
        async with asyncio.timeout(10):
            await self.listening.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, slug: str) -> None:
        self._directory.invalidate(slug)

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=self._check_seconds)
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self._directory.clear()  # changes made while we were not listening
                self.listening.set()
                await self._watch(conn, closed)
                log.warning("registry listener connection closed; reconnecting")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("registry listener failed (%r); reconnecting", exc)
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()  # close() could wait forever on a dead peer
            self._directory.clear()
            await asyncio.sleep(self._retry_seconds)

    async def _watch(self, conn: asyncpg.Connection, closed: asyncio.Event) -> None:
        """Return when the connection closes; raise when it stops answering."""
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_seconds):
                    await closed.wait()
                return
            await conn.fetchval("SELECT 1", timeout=self._check_seconds)

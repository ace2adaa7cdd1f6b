"""The registry in memory: every live tenant, loaded at start-up and kept current by NOTIFY.

A request resolves its slug in memory, known or not: an unknown slug costs no registry query,
however many distinct ones arrive, and evicts nothing (there is no cache to flush), so neither
timing nor load tells an attacker which slugs exist. Each change to a tenant or its keys is
announced with `NOTIFY tenantry_registry, '<slug>'` on commit; the listener hands the slug to
the directory, which reloads that tenant (slugs announced together are reloaded in one query).
A request for a slug whose reload is under way waits for it, so a revoked key is refused as soon
as the notification arrives.

The map is trusted only while the listener proves it hears every notification: it is LISTENing
on a connection that answered a query within the last `3 * check_seconds` (6 s by default), and
the map was loaded after that LISTEN began. Otherwise (start-up, a lost or silent connection, a
failed reload) every request reads the registry directly, as one query, until the listener is
back and the map reloaded. `ttl` is a backstop only, for registry rows edited by hand without
NOTIFY: the whole map is reloaded that often (an hour by default).
"""

import asyncio
import contextlib
import logging
import socket
import time

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from tenancy.naming import NOTIFY_CHANNEL
from tenancy.registry import ResolvedTenant, resolve_tenant, resolve_tenants

log = logging.getLogger(__name__)

LISTENER_APPLICATION_NAME = "{application_name}/registry-listener"
"""pg_stat_activity.application_name of the listener's connection ("tenantry/registry-listener")."""


class TenantDirectory:
    """Slug -> ResolvedTenant for every live (active or suspended) tenant, in memory.

    `registry_queries` counts every registry query this directory made (full loads, reloads
    after a notification, direct reads while not in sync): requests for known and unknown slugs
    alike add nothing to it while the directory is in sync.
    """

    def __init__(self, engine: AsyncEngine, ttl: float = 3600.0, retry_seconds: float = 1.0):
        self._engine = engine
        self._resync_seconds = ttl if ttl > 0 else None
        self._retry_seconds = retry_seconds
        self._tenants: dict[str, ResolvedTenant] = {}
        self._waiting: dict[str, asyncio.Future[None]] = {}  # announced, reload not begun
        self._reloading: dict[str, asyncio.Future[None]] = {}  # in the reload under way
        self._epoch = 0  # bumped whenever the listener starts or stops listening
        self._listening = False
        self._in_sync = False  # the map was loaded during the current epoch
        self._needs_load = True
        self._alive_until = 0.0  # time.monotonic() until which the listener counts as alive
        self._wake = asyncio.Event()
        self._first_attempt = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.registry_queries = 0
        self.loaded_at: float | None = None  # time.monotonic() of the last full load

    # -- the request path ------------------------------------------------------------------

    @property
    def trusted(self) -> bool:
        """True while the map is known to hold every change announced so far."""
        return self._in_sync and time.monotonic() < self._alive_until

    def __len__(self) -> int:
        return len(self._tenants)

    async def get(self, slug: str) -> ResolvedTenant | None:
        """The live tenant of this slug, or None; no query while in sync."""
        if self.trusted:
            pending = self._waiting.get(slug) or self._reloading.get(slug)
            if pending is not None:
                await asyncio.shield(pending)  # the reload its notification started
            if self.trusted:
                return self._tenants.get(slug)
        async with self._engine.connect() as conn:
            self.registry_queries += 1
            return await resolve_tenant(conn, slug)

    # -- what the listener tells it --------------------------------------------------------

    def listening_started(self, alive_until: float) -> None:
        """LISTEN is in place on a new connection: reload everything (changes may have been
        missed while not listening)."""
        self._epoch += 1
        self._listening = True
        self._in_sync = False
        self._needs_load = True
        self._alive_until = alive_until
        self._wake.set()

    def listening_stopped(self) -> None:
        """Notifications may be missed from now on: stop trusting the map."""
        self._epoch += 1
        self._listening = False
        self._in_sync = False
        self._alive_until = 0.0

    def alive(self, until: float) -> None:
        """The listener's connection answered; trust the map until `until` (monotonic)."""
        self._alive_until = until

    def changed(self, slug: str) -> None:
        """A notification named this slug: reload it before the next request for it."""
        if slug not in self._waiting:
            self._waiting[slug] = asyncio.get_running_loop().create_future()
            self._wake.set()

    async def reload(self, slug: str) -> None:
        """Reload this slug now and wait for it: a change this process just committed is seen by
        its next request without waiting for the NOTIFY (which will reload it once more)."""
        if not self.trusted:
            return  # requests read the registry directly anyway
        self.changed(slug)
        await asyncio.shield(self._waiting.get(slug) or self._reloading[slug])

    def cached(self, slug: str) -> ResolvedTenant | None:
        """The in-memory entry, without any query (None when unknown or not loaded)."""
        return self._tenants.get(slug)

    # -- keeping the map current -----------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._sync(), name="tenantry-directory-sync")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        self._release(self._waiting)
        self._release(self._reloading)

    async def first_load_attempted(self) -> None:
        """Wait until the first full load has succeeded or failed."""
        await self._first_attempt.wait()

    async def _sync(self) -> None:
        """The one task that loads and reloads, in the order the notifications arrived."""
        while True:
            woken = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._resync_seconds):
                    await self._wake.wait()
                    woken = True
            self._wake.clear()
            if not woken:
                self._needs_load = True  # the periodic backstop
            try:
                if self._needs_load and self._listening:
                    await self._load_all()
                while self._waiting:
                    await self._reload_announced()
            except Exception as exc:  # a database error of any kind: never trust a partial map
                log.warning("registry reload failed (%r); reading the registry directly", exc)
                self._in_sync = False
                self._needs_load = True
                self._release(self._reloading)
                self._release(self._waiting)
                self._first_attempt.set()
                await asyncio.sleep(self._retry_seconds)
                self._wake.set()

    async def _load_all(self) -> None:
        epoch = self._epoch
        self._needs_load = False
        async with self._engine.connect() as conn:
            self.registry_queries += 1
            loaded = await resolve_tenants(conn)
        if epoch == self._epoch:
            self._tenants = loaded
            self._in_sync = True
            self.loaded_at = time.monotonic()
        self._first_attempt.set()

    async def _reload_announced(self) -> None:
        self._reloading, self._waiting = self._waiting, {}
        slugs = list(self._reloading)
        try:
            async with self._engine.connect() as conn:
                self.registry_queries += 1
                found = await resolve_tenants(conn, slugs)
            for slug in slugs:
                tenant = found.get(slug)
                if tenant is None:
                    self._tenants.pop(slug, None)
                else:
                    self._tenants[slug] = tenant
        finally:
            self._release(self._reloading)

    @staticmethod
    def _release(futures: dict[str, asyncio.Future[None]]) -> None:
        for future in futures.values():
            if not future.done():
                future.set_result(None)
        futures.clear()


class RegistryListener:
    """LISTENs for registry changes on a connection of its own and feeds them to the directory.

    Every `check_seconds` the connection must answer a `SELECT 1` within `check_seconds`; a
    connection that died silently (no FIN or RST: a vanished host, a partition, a proxy that
    stopped forwarding) is thus found within seconds, replaced, and the directory stops trusting
    its map at once (see TenantDirectory). On TCP the socket also gets keepalive probes and
    TCP_USER_TIMEOUT at the same scale (asyncpg has no keepalive options: they are set on the
    transport's socket), and the server gets the same settings for its side of the connection.
    """

    def __init__(
        self,
        dsn: str,
        directory: TenantDirectory,
        retry_seconds: float = 1.0,
        check_seconds: float = 2.0,
        application_name: str = "tenantry",
        first_load_timeout: float = 120.0,
    ) -> None:
        self._dsn = dsn
        self._directory = directory
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds
        self._first_load_timeout = first_load_timeout
        self.application_name = LISTENER_APPLICATION_NAME.format(application_name=application_name)[
            :63
        ]
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        """Return once listening and the directory's first full load was tried, so that no change
        made after start-up can be missed. Raises TimeoutError if nothing listens within 10 s."""
        self._directory.start()
        self._task = asyncio.create_task(self._run(), name="tenantry-registry-listener")
        async with asyncio.timeout(10):
            await self.listening.wait()
        async with asyncio.timeout(self._first_load_timeout):
            await self._directory.first_load_attempted()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._directory.stop()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, slug: str) -> None:
        self._directory.changed(slug)

    def _trust_until(self) -> float:
        return time.monotonic() + 3 * self._check_seconds

    async def _connect(self) -> asyncpg.Connection:
        seconds = min(max(1, round(self._check_seconds)), 32767)
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self._check_seconds,
            server_settings={
                "application_name": self.application_name,
                # the server's side of the same connection (ignored on a Unix socket)
                "tcp_keepalives_idle": str(seconds),
                "tcp_keepalives_interval": str(seconds),
                "tcp_keepalives_count": "3",
                "tcp_user_timeout": str(3 * seconds * 1000),
            },
        )
        set_tcp_keepalive(conn, self._check_seconds)
        return conn

    async def _run(self) -> None:
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                closed = asyncio.Event()
                conn.add_termination_listener(lambda _c, closed=closed: closed.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self._directory.listening_started(self._trust_until())
                self.listening.set()
                await self._watch(conn, closed)
                log.warning("registry listener connection closed; reconnecting")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("registry listener failed (%r); reconnecting", exc)
            finally:
                self._directory.listening_stopped()
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    conn.terminate()  # close() could wait forever on a dead peer
            await asyncio.sleep(self._retry_seconds)

    async def _watch(self, conn: asyncpg.Connection, closed: asyncio.Event) -> None:
        """Return when the connection closes; raise when it stops answering."""
        while not closed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._check_seconds):
                    await closed.wait()
                return
            await conn.fetchval("SELECT 1", timeout=self._check_seconds)
            self._directory.alive(self._trust_until())


def set_tcp_keepalive(conn: asyncpg.Connection, seconds: float) -> bool:
    """Keepalive probes after `seconds` idle, every `seconds`, 3 unanswered = dead; unacknowledged
    data for 3 * `seconds` = dead (TCP_USER_TIMEOUT). Returns False on a Unix socket (nothing to
    set). asyncpg exposes no such option (MagicStack/asyncpg#606): the transport's socket is set.
    """
    sock = conn._transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    whole = min(max(1, round(seconds)), 32767)  # Linux refuses a longer keepalive interval
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", whole),
        ("TCP_KEEPINTVL", whole),
        ("TCP_KEEPCNT", 3),
        ("TCP_USER_TIMEOUT", 3 * whole * 1000),
    ):
        if hasattr(socket, option):  # Linux has all four; macOS lacks TCP_USER_TIMEOUT
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return True

"""The benchmark's throwaway databases: N real tenants with seeded todos, and a plain copy.

Tenants are created with `tenancy.lifecycle.onboarding.create_tenant` (the onboarding path) over a
few concurrent connections and seeded through `tenant_transaction`; the plain database has the same
tables and rows in `public`, for the app without tenancy. Every database is dropped at the end.
"""

import asyncio
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass

from sqlalchemy import insert, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from service.models import TenantBase, Todo
from service.paths import ALEMBIC_INI, PROJECT_ROOT
from tenancy.database import create_engine, ensure_database
from tenancy.lifecycle.onboarding import create_tenant
from tenancy.migrate.tracks import load_tracks
from tenancy.session import tenant_transaction
from tenancy.settings import TenancySettings
from tenancy.testing.drop import drop_database
from tenancy.testing.replay_builders import replayed

PLAIN_MARKER = "plain"
"""Every todo of the plain database says so; tenant todos carry their tenant's slug."""


@dataclass(frozen=True)
class BenchTenant:
    slug: str
    api_key: str


@dataclass
class TenantDatabase:
    url: str
    tenants: list[BenchTenant]
    setup_seconds: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _todo_rows(marker: str, count: int) -> list[dict[str, str]]:
    return [{"content": f"{marker} todo {n}"} for n in range(1, count + 1)]


class BenchDatabases:
    """Creates each database on first use (keyed by tenant count) and drops them all on close."""

    def __init__(self, server_url: str, todos: int, concurrency: int = 4) -> None:
        self.server_url = server_url
        self.todos = todos
        self.concurrency = concurrency
        self._tenant_dbs: dict[int, TenantDatabase] = {}
        self._plain: str | None = None
        self._urls: list[str] = []

    async def _new_database(self, label: str) -> str:
        name = f"tenantry_bench_{label}_{secrets.token_hex(3)}"
        url = make_url(self.server_url).set(database=name).render_as_string(hide_password=False)
        await ensure_database(url)
        self._urls.append(url)
        return url

    def _engine(self, url: str) -> AsyncEngine:
        settings = TenancySettings(
            database_url=url, pool_size=self.concurrency, max_overflow=0, pool_max_uses=0
        )
        return create_engine(url, settings)

    async def with_tenants(self, count: int) -> TenantDatabase:
        if count not in self._tenant_dbs:
            url = await self._new_database(f"t{count}")
            started = time.perf_counter()
            await asyncio.to_thread(_migrate, url)
            engine = self._engine(url)
            try:
                tenants = await _create_tenants(engine, count, self.todos, self.concurrency)
            finally:
                await engine.dispose()
            seconds = time.perf_counter() - started
            log(f"  {count} tenants created and seeded in {seconds:.1f} s")
            self._tenant_dbs[count] = TenantDatabase(url, tenants, seconds)
        return self._tenant_dbs[count]

    async def plain(self) -> str:
        """A database with the tenant tables once, in public, and no registry."""
        if self._plain is None:
            url = await self._new_database("plain")
            engine = self._engine(url)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(TenantBase.metadata.create_all)
                    await conn.execute(insert(Todo), _todo_rows(PLAIN_MARKER, self.todos))
            finally:
                await engine.dispose()
            self._plain = url
        return self._plain

    async def drop_all(self) -> None:
        """All at once: each DROP DATABASE waits for a checkpoint, concurrent ones share it."""
        await asyncio.gather(*(drop_database(url) for url in self._urls))
        self._urls.clear()
        self._tenant_dbs.clear()
        self._plain = None


def _migrate(url: str) -> None:
    """The real `alembic upgrade head` (shared registry schema; no tenants yet)."""
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TENANTRY_DATABASE_URL": url},
        check=True,
        capture_output=True,
        timeout=300,
    )


async def _create_tenants(
    engine: AsyncEngine, count: int, todos: int, concurrency: int
) -> list[BenchTenant]:
    tracks = load_tracks(ALEMBIC_INI)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> BenchTenant:
        async with gate:
            created = await create_tenant(engine, replayed(tracks), f"bench-{n:05d}")
            async with tenant_transaction(sessions, created.schema) as session:
                await session.execute(insert(Todo), _todo_rows(created.slug, todos))
            return BenchTenant(created.slug, created.api_key)

    return list(await asyncio.gather(*(one(n) for n in range(count))))
